"""The markdown summary, in the shape of the seed's "Rapport de Déploiement".

Pure rendering from run metadata and merged results, so it is unit-tested without pytest
runs. Everything passes through redaction before it is written.
"""
from __future__ import annotations

from typing import Any

from plugins.redaction import redact
from plugins.results import CheckResult, counts

ICONS = {"passed": "✅ passed", "warning": "⚠️ warning", "waived": "📝 waived",
         "failed": "❌ failed", "error": "💥 error", "skipped": "⏭️ skipped"}


def _cell(text: str) -> str:
    return redact(text).replace("|", "\\|").replace("\n", " ")


def verdict(results: list[CheckResult]) -> str:
    total = counts(results)
    if total["failed"] or total["error"]:
        return "FAILED"
    if not results or total["passed"] + total["warning"] + total["waived"] == 0:
        return "INCONCLUSIVE"
    return "PASSED WITH WARNINGS" if total["warning"] or total["waived"] else "PASSED"


def render(meta: dict[str, Any], results: list[CheckResult]) -> str:
    total = counts(results)
    lines = [f"# Rapport de vérification — {meta.get('environment', '?')}", ""]
    lines += ["## Informations générales", ""]
    for label, key in (("Date (UTC)", "started"), ("Fin (UTC)", "finished"),
                       ("Environnement", "environment"), ("Profil", "profile"),
                       ("Ancres de confiance", "trust_anchors"),
                       ("Point de vue (adresse source)", "vantage"),
                       ("Version de la plateforme", "target_version"),
                       ("Lancé par", "user"), ("Commande", "command"),
                       ("Version de mssante-check (git)", "suite_commit"),
                       ("Outils", "tools"), ("Rapports", "reports_dir")):
        if meta.get(key):
            lines.append(f"- **{label}:** {_cell(str(meta[key]))}")
    lines += ["", f"**Verdict : {verdict(results)}** — " + ", ".join(
        f"{n} {name}" for name, n in total.items() if n), ""]

    lines += ["## Services vérifiés", "", "| Service | Tests | Résultat |", "|---|---|---|"]
    services: dict[str, list[CheckResult]] = {}
    for result in results:
        for service in result.services or ["(other)"]:
            services.setdefault(service, []).append(result)
    for service, group in sorted(services.items()):
        bad = [r for r in group if r.outcome in ("failed", "error")]
        state = "❌ en échec" if bad else (
            "⏭️ non vérifié" if all(r.outcome == "skipped" for r in group) else "✅ OK")
        lines.append(f"| {service} | {len(group)} | {state} |")

    lines += ["", "## Tests", "", "| Test | Exigences | Résultat | Durée | Détail |",
              "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| `{_cell(r.nodeid)}` | {', '.join(r.requirements)} | "
                     f"{ICONS.get(r.outcome, r.outcome)} | {r.duration_s:.2f}s | "
                     f"{_cell(r.message)} |")

    measured = [(r, m) for r in results for m in r.measured]
    lines += ["", "## Métriques", ""]
    if measured:
        lines += ["| Mesure | Valeur | Test |", "|---|---|---|"]
        for r, m in measured:
            lines.append(f"| {_cell(m['name'])} | {_cell(str(m['value']))} {m.get('unit', '')} "
                         f"| `{_cell(r.nodeid)}` |")
    else:
        lines.append("- Aucune mesure enregistrée")

    problems = [r for r in results if r.outcome in ("failed", "error", "warning", "waived")]
    lines += ["", "## Issues connues", ""]
    lines += [f"- **{r.outcome}** `{_cell(r.nodeid)}` — {_cell(r.message)}"
              + (f" (dérogation : {_cell(r.waiver.get('justification', ''))})" if r.waiver else "")
              for r in problems] or ["- Aucune"]

    skipped = [r for r in results if r.outcome == "skipped"]
    lines += ["", "## Non vérifié", ""]
    lines += [f"- `{_cell(r.nodeid)}` — {_cell(r.message)}" for r in skipped] or ["- Rien"]

    lines += ["", "## Actions de suivi", ""]
    lines += [f"- [ ] Corriger : `{_cell(r.nodeid)}`" for r in problems
              if r.outcome in ("failed", "error")]
    lines += [f"- [ ] Configurer ou justifier : `{_cell(r.nodeid)}`" for r in skipped]
    lines += ["- [ ] Surveiller les logs pendant 24h", "- [ ] Vérifier les métriques"]
    return "\n".join(lines) + "\n"

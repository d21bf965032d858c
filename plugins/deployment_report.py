"""``reports/deployments/deployment-YYYYMMDD_HHMMSS.md``: the seed's "Rapport de Déploiement".

The seed's sections (general information, services, post-deployment tests, metrics — API mean
response time and resource use —, known issues, follow-up actions), plus what an auditor asks
of a deployment (DESIGN §6): the outcome (deployed, rolled back and why, aborted, failed), what
the API's version endpoint served (the proof a deploy happened, or why it was rolled back),
each phase with its duration and deadline, where each setting came from, the data check after
a rollback, and the SHA-256 of every artefact. Written by the controller only.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from plugins import backups, environments, hosts, reporting, run
from plugins.redaction import redact
from plugins.results import CheckResult
from plugins.summary_md import ICONS

if TYPE_CHECKING:
    from plugins.lifecycle import Deployment, Lifecycle
    from plugins.profile import Profile

OUTCOMES = {
    "deployed": "✅ DÉPLOYÉ",
    "rolled_back": "↩️ ANNULÉ — rollback automatique réussi",
    "aborted": "⛔ INTERROMPU avant toute modification",
    "failed": "❌ ÉCHEC — le rollback n'a pas abouti, intervention requise",
}
PHASE_ICONS = {True: "✅", False: "❌", None: "⏭️ non configuré"}


def _cell(text: Any) -> str:
    return redact(str(text)).replace("|", "\\|").replace("\n", " ")


def _utc(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp)) if timestamp else "?"


def render(d: Deployment, meta: dict[str, Any], tests: list[CheckResult],
           facts: dict[str, Any]) -> str:
    """Pure rendering: the deployment, the run's metadata, the session's tests and the facts
    gathered on the platform (services, resources, API timing, settings, artefacts)."""
    lines = ["# Rapport de Déploiement", "",
             f"**Résultat : {OUTCOMES.get(d.state, d.state)}**"
             + (f" — {_cell(d.reason)}" if d.reason else ""), ""]
    lines += ["## Informations générales", ""]
    general = [
        ("Date", f"{_utc(d.started)} → {_utc(d.finished)} "
                 f"({(d.finished or d.started) - d.started:.0f}s)"),
        ("Version", f"{d.version} (précédente : {d.previous_version})"),
        ("Version servie par l'API après le déploiement", _served(d)),
        ("Déployé par", meta.get("user", "?")),
        ("Environnement", meta.get("environment", d.environment)),
        ("Identifiant du déploiement", d.id),
        ("Sauvegarde", f"{d.backup.path} ({d.backup.id})" if d.backup else "aucune"),
        ("Commit de la plateforme", facts.get("platform_commit", "?")),
        ("Version de mssante-check (git)", meta.get("suite_commit", "")),
        ("Commande", meta.get("command", "")),
        ("Outils", meta.get("tools", "")),
    ]
    lines += [f"- **{label}:** {_cell(value)}" for label, value in general if value]
    lines += ["", "### Paramètres et leur origine", "", "| Paramètre | Valeur | Origine |",
              "|---|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} | {_cell(o)} |" for k, v, o in facts.get("settings", [])]

    lines += ["", "## Déroulement", "", "| Étape | Résultat | Durée | Délai max | Détail |",
              "|---|---|---|---|---|"]
    for phase in d.phases:
        limit = f"{phase.deadline_s:g}s" if phase.deadline_s is not None else "—"
        lines.append(f"| {_cell(phase.label)} (`{phase.name}`) | {PHASE_ICONS[phase.ok]} | "
                     f"{phase.duration_s:.1f}s | {limit} | {_cell(phase.detail)} |")

    lines += ["", "## Services déployés", "", "| Service | État | Détail |", "|---|---|---|"]
    for name, state, detail in facts.get("services", []):
        lines.append(f"| {_cell(name)} | {_cell(state)} | {_cell(detail)} |")

    lines += ["", "## Tests post-déploiement", ""]
    if tests:
        under = facts.get("under_deployment")
        if under:
            lines += [f"Tests exécutés sous le déploiement {d.id} : {under[0]}/{under[1]}", ""]
        lines += ["| Test | Exigences | Résultat | Durée | Détail |", "|---|---|---|---|---|"]
        lines += [f"| `{_cell(r.nodeid)}` | {', '.join(r.requirements)} | "
                  f"{ICONS.get(r.outcome, r.outcome)} | {r.duration_s:.2f}s | {_cell(r.message)} |"
                  for r in tests]
    else:
        lines.append("- Aucun test exécuté dans cette session")
    if d.nested_reports:
        lines += ["", "Suites lancées par le déploiement : " + ", ".join(
            f"{name} → `{path}`" for name, path in d.nested_reports.items())]

    lines += ["", "## Métriques", "", "### Performance API"]
    api = facts.get("api")
    lines.append(f"- Temps de réponse moyen: {api['mean_ms']}ms (p95 {api['p95_ms']}ms, "
                 f"{api['count']} requêtes mesurées pendant le déploiement)" if api
                 else "- Temps de réponse moyen: non mesuré (API injoignable)")
    lines += ["", "### Utilisation ressources"]
    res = facts.get("resources")
    if isinstance(res, dict):
        lines.append(f"- CPU: charge {res['load1']} sur 1 min ({res['cpus']} cœurs)")
        lines.append(f"- RAM: {res['mem_used_mb']} MiB utilisés sur {res['mem_total_mb']} MiB")
        lines += [f"- Disque libre ({_cell(path)}): {free} GB"
                  for path, free in res["disk_free_gb"].items()]
    else:
        lines.append(f"- non mesurée: {_cell(res)}")

    if d.data_check:
        lines += ["", "## Données après rollback", ""]
        lines += [f"- {_cell(line)}" for line in d.data_check]

    lines += ["", "## Issues connues", ""]
    issues = [f"- **{p.label}** : {_cell(p.detail)}" for p in d.phases if p.ok is False]
    issues += [f"- **{r.outcome}** `{_cell(r.nodeid)}` — {_cell(r.message)}" for r in tests
               if r.outcome in ("failed", "error", "warning")]
    lines += issues or ["- Aucune"]

    lines += ["", "## Actions de suivi", ""]
    if d.state == "deployed":
        lines += ["- [ ] Surveiller les logs pendant 24h", "- [ ] Vérifier les métriques",
                  "- [ ] Valider avec les utilisateurs pilotes"]
    elif d.state == "rolled_back":
        lines += [f"- [ ] Analyser l'échec de {d.version} : {_cell(d.reason)}",
                  f"- [ ] Corriger {d.version} avant tout nouveau déploiement",
                  f"- [ ] Informer les utilisateurs : {d.previous_version} reste en service"]
    elif d.state == "aborted":
        lines += [f"- [ ] Corriger ce qui bloque le déploiement : {_cell(d.reason)}",
                  f"- [ ] Relancer le déploiement de {d.version}"]
    else:
        lines += ["- [ ] Intervention immédiate : la plateforme reste en maintenance",
                  f"- [ ] Restaurer à la main : `python -m plugins.backups --env "
                  f"{d.environment} --restore {d.backup.id if d.backup else 'ID'}`"]

    lines += ["", "## Artefacts (SHA-256)", "", "| Fichier | SHA-256 |", "|---|---|"]
    lines += [f"| `{_cell(path)}` | `{digest}` |" for path, digest in facts.get("artefacts", [])]
    return "\n".join(lines) + "\n"


def _served(d: Deployment) -> str:
    """The deploy's proof as one line: what ``wait_version`` last read, against the target."""
    if not d.served:
        return "non vérifiée (le déploiement n'est pas allé jusque-là)"
    if any(p.name == "wait_version" and p.ok for p in d.phases):
        return f"{d.served} — déploiement prouvé"
    if d.served.split()[0] == d.version:
        return f"{d.served} — le schéma n'est pas celui que {d.version} attend"
    return f"{d.served} au lieu de {d.version} — le déploiement n'a pas pris effet"


def _services(lifecycle: Lifecycle, host: Any) -> list[tuple[str, str, str]]:
    """Each process and service of the platform host, and what the API reports of itself."""
    rows = []
    spec = lifecycle.host_spec
    for name in spec.processes:
        try:
            problems = hosts.not_running(host, spec, name)
        except Exception as exc:  # noqa: BLE001 - the report says what it could not read
            rows.append((name, "❔ non lu", f"{type(exc).__name__}: {exc}"))
            continue
        ports = ", ".join(str(p.port) for p in spec.ports if p.process == name)
        rows.append((name, "❌ arrêté" if problems else "✅ en service",
                     "; ".join(problems) or f"tient le(s) port(s) {ports}"))
    for name in spec.services:
        service = host.service(name)
        rows.append((name, "✅ en service" if service.is_running else "❌ arrêté", "service"))
    try:
        info = lifecycle.api_version()
        rows.append(("api", f"version {info.get('version')}",
                     f"schéma {info.get('schema')} (attendu {info.get('schema_expected')})"))
    except Exception as exc:  # noqa: BLE001 - the report says what it could not read
        rows.append(("api", "❌ version illisible", f"{type(exc).__name__}: {exc}"))
    return rows


def _artefacts(d: Deployment) -> list[tuple[str, str]]:
    files: list[Path] = []
    if d.backup is not None:
        files += [d.backup.path / name for name in backups.REQUIRED]
    for folder in d.nested_reports.values():
        files += [folder / "results.json", folder / "summary.md"]
    return [(str(f), backups.sha256_file(f)) for f in files if f.is_file()]


def _settings(config: pytest.Config, profile: Profile,
              lifecycle: Lifecycle) -> list[tuple[str, str, str]]:
    origin = config.stash.get(environments.ORIGIN_KEY, "?")
    section = lifecycle.section
    rows = [("environnement", profile.name, f"{origin}: {profile.path}"),
            ("version", lifecycle.deployment.version, "ligne de commande (--deploy)")]
    try:
        cfg = backups.settings(profile)
        rows.append(("BACKUP_DIR", str(cfg.dir), cfg.dir_origin))
    except Exception as exc:  # noqa: BLE001 - the report says what it could not read
        rows.append(("BACKUP_DIR", "?", str(exc)))
    for key, value in (("health_timeout_s", lifecycle.health_timeout),
                       ("version_timeout_s", lifecycle.version_timeout),
                       ("command_timeout_s", lifecycle.timeout)):
        default = "défaut (health_timeout_s)" if key == "version_timeout_s" else "défaut"
        rows.append((key, f"{value:g}", "profil [lifecycle]" if key in section else default))
    for key in ("deploy_command", "rollback_command", "migrate_command",
                "maintenance_on_command", "maintenance_off_command"):
        if key in section:
            rows.append((key, section[key], "profil [lifecycle]"))
    rows.append(("hôte", f"{lifecycle.host_spec.name} ({lifecycle.host_spec.connection})",
                 "profil [[hosts]]"))
    return rows


def write(config: pytest.Config, profile: Profile, lifecycle: Lifecycle, d: Deployment) -> Path:
    """Gather the facts on the platform and write the report; returns its path."""
    collector = config.stash.get(reporting.COLLECTOR_KEY, None)
    meta = collector.metadata() if collector else {}
    tests = [r for r in (collector.results.values() if collector else [])
             if not r.nodeid.startswith("lifecycle::")]
    host = hosts.connect(lifecycle.host_spec.connection)
    try:
        resources: Any = hosts.resources(host, lifecycle.host_spec.disk_paths)
    except Exception as exc:  # noqa: BLE001 - the report says what it could not measure
        resources = f"{type(exc).__name__}: {exc}"
    cfg_source = profile.path_of("lifecycle", "source_dir")
    before = d.backup.read_info().get("git_commit", "?") if d.backup else "?"
    facts = {
        "settings": _settings(config, profile, lifecycle),
        "services": _services(lifecycle, host),
        "api": lifecycle.api_stats(),
        "resources": resources,
        "platform_commit": f"{before} → {backups.git_output(cfg_source, 'rev-parse', 'HEAD')}",
        "artefacts": _artefacts(d),
        "under_deployment": (len(lifecycle.under_deployment), len(lifecycle.all_tests)),
    }
    folder = run.reports_dir(config) / "deployments"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"deployment-{config.stash[run.RUN_KEY].run_id}.md"
    path.write_text(render(d, meta, tests, facts))
    return path

"""The platform's own environment: where ``[environment] required_env`` is looked up.

The seed's ``check-env.sh`` asks whether the *platform* has its settings, so a variable set in
mssante-check's own environment or ``env_file`` (its secrets) proves nothing. The profile names
where the platform reads them: ``platform_env_file`` (its env file, read on the platform host
through testinfra) and ``platform_env_port`` (the environment of the process holding that port,
``/proc/<pid>/environ``, read again if that process exits meanwhile). The file is read first;
the process only for what the file lacks.

Values are secrets more often than not: they are read to tell "set" from "empty" and never
leave this module's callers' hands: a check asserts on presence, and shows a value only for a
non-secret setting it names (NODE_ENV).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from plugins import hosts
from plugins.envfile import parse_env_text
from plugins.profile import NotConfigured, Profile
from probes.errors import CouldNotRun


@dataclass
class Source:
    """One place the platform reads variables from, once read."""

    label: str                                  # "platform:/opt/mssante/.env"
    values: dict[str, str] = field(default_factory=dict, repr=False)
    problem: str | None = None                  # could not be read: why (not a verdict)
    absent: str | None = None                   # read, and there is nothing: why


@dataclass
class PlatformEnv:
    """The platform's sources, read lazily in order (file, then port holder)."""

    profile: Profile
    host: Any
    host_name: str
    _sources: list[Source] = field(default_factory=list, repr=False)

    def _file(self) -> Source:
        path = self.profile.path_of("environment", "platform_env_file")
        source = Source(f"{self.host_name}:{path}")
        try:
            file = self.host.file(str(path))
            if not file.exists:
                source.absent = "does not exist"
            else:
                source.values = parse_env_text(file.content_string)
        except (RuntimeError, AssertionError, OSError, CouldNotRun) as exc:
            source.problem = f"cannot be read: {exc}"
        return source

    def _process(self) -> Source:
        port = self.profile.data["environment"]["platform_env_port"]
        source = Source(f"{self.host_name}: environment of the process holding port {port}")
        try:
            found = hosts.read_holder(self.host, port, self._environ)
        except (CouldNotRun, RuntimeError) as exc:
            source.problem = str(exc)
            return source
        if found is None:
            source.problem = f"no process holds port {port} (its environment cannot be read)"
            return source
        holder, values = found
        source.label += f" ({holder.name}, pid {holder.pid})"
        source.values = values
        return source

    def _environ(self, holder: hosts.Holder) -> dict[str, str]:
        path = f"/proc/{holder.pid}/environ"
        try:
            data = self.host.file(path).content
        except RuntimeError:
            if not self.host.file(f"/proc/{holder.pid}").exists:
                raise hosts.ProcessGone(holder.pid) from None
            raise RuntimeError(f"{path} cannot be read (not root on "
                               f"{self.host_name}?)") from None
        pairs = (item.partition(b"=") for item in data.split(b"\0") if b"=" in item)
        return {key.decode(errors="replace"): value.decode(errors="replace")
                for key, _, value in pairs}

    def sources(self) -> Iterator[Source]:
        """Each source in order, read the first time it is needed."""
        env = self.profile.data["environment"]
        readers = [reader for key, reader in (("platform_env_file", self._file),
                                              ("platform_env_port", self._process))
                   if key in env]
        for index, reader in enumerate(readers):
            if index == len(self._sources):
                self._sources.append(reader())
            yield self._sources[index]

    def lookup(self, variable: str) -> tuple[str, str] | None:
        """(value, source label) where ``variable`` is set non-empty; None when every source
        was read and none sets it; CouldNotRun when none that was read sets it and another
        could not be read (unknown is not "not set")."""
        unread = []
        for source in self.sources():
            if source.values.get(variable):
                return source.values[variable], source.label
            if source.problem:
                unread.append(f"{source.label}: {source.problem}")
        if unread:
            raise CouldNotRun(self.host_name, f"look up {variable} on the platform",
                              f"not set where it could be read, and {'; '.join(unread)}")
        return None

    def searched(self) -> str:
        """Every source looked in, for a message."""
        return "; ".join(f"{s.label}{f' ({s.absent})' if s.absent else ''}"
                         for s in self.sources())


def platform_env(profile: Profile) -> PlatformEnv:
    """The platform's environment, on the host that runs the deploy commands."""
    env = profile.data["environment"]
    if "platform_env_file" not in env and "platform_env_port" not in env:
        raise NotConfigured(profile.name, "[environment] platform_env_file or platform_env_port")
    spec = hosts.platform_host(profile)
    if spec is None:
        raise NotConfigured(profile.name, "[[hosts]]")
    return PlatformEnv(profile, hosts.connect(spec.connection), spec.name)

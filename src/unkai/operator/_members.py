"""One round of an instance group's reconciliation: its members, VMs on their hosts.

:class:`GroupWorker` is what one operator process keeps for one group: the members it
is making (a boot takes tens of seconds, so each runs in a thread of its own and the
rounds go on), its health checks' recent failures and its members' CPU readings.
Everything else is read each round: the group's object (its slots: what a member in
each is made from) and its hosts (libvirt: which members' domains exist and run), and
what must outlive the process is written to the object's status: when each member was
made and from which digest. A member whose making a killed process left unfinished is
in the status as ``booting``; the next process makes it again from scratch (what the
killed making left in the slot goes first), so no member is lost or made twice.

Members are made and removed by :mod:`unkai.drivers.vms`, the code the ``Instance`` kind
uses, from the inputs ``unkai up`` rendered into the slot: a member is byte for byte
what a plain instance of the same name would be.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import logging
import socket
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from unkai.drivers import libvirt, vms
from unkai.errors import DriverError, UnkaiError
from unkai.kinds import InstanceInputs
from unkai.operator._groups import Decision, GroupSpec, MemberView, Memory, Phase
from unkai.operator._pools import Event

log = logging.getLogger("unkai.operator")

Say = Callable[[str], None]


def _image(spec: Mapping[str, Any], slot: Mapping[str, Any]) -> str:
    """The image volume a slot's boot disk is layered over: its host's (``imageVolumes``)."""
    return str((spec.get("imageVolumes") or {}).get(slot["host"], ""))


def slot_digests(spec: Mapping[str, Any]) -> dict[str, str]:
    """What a member of each slot is made from: its inputs, image and secret env version.

    Each slot's is the digest of its rendered inputs, its host's image volume and the
    ``secretVersion``. The image volume's name carries the image's content digest, so a
    new image is a new digest too, and the group rolls onto it; so does a new version of
    the Secret its members' secret env is kept in (``secretVersion``, which ``up`` sets
    when it applies a new value).
    """
    version = spec.get("secretVersion")
    found = {}
    for slot in spec.get("slots") or ():
        made_from = f"{slot['digest']}:{_image(spec, slot)}" + (f":{version}" if version else "")
        found[slot["name"]] = hashlib.sha256(made_from.encode()).hexdigest()[:16]
    return found


def group_spec(name: str, spec: Mapping[str, Any]) -> GroupSpec:
    """The reconciler's view of an ``InstanceGroup`` object's ``spec`` (defaults applied)."""
    health = spec.get("healthCheck") or {}
    scaling = spec.get("autoscaling") or {}
    return GroupSpec(
        name=name,
        size=int(spec["size"]),
        min_size=int(spec["minSize"]),
        max_size=int(spec["maxSize"]),
        slots=slot_digests(spec),
        max_surge=int(spec.get("maxSurge", 1)),
        max_unavailable=int(spec.get("maxUnavailable", 0)),
        auto_healing=bool(spec.get("autoHealing", True)),
        initial_delay=float(health.get("initialDelaySeconds", 300)),
        max_repairs=int(spec.get("maxRepairs", 3)),
        repair_window=float(spec.get("repairWindowSeconds", 600)),
        target_cpu=int(scaling.get("targetCpuPercent", 60)) / 100,
        scale_in_stabilization=float(scaling.get("scaleInStabilizationSeconds", 600)),
        initialization=float(scaling.get("initializationSeconds", 120)),
    )


def slot_inputs(spec: Mapping[str, Any]) -> dict[str, InstanceInputs]:
    """Each slot's instance inputs, with its host's image, validated by the ``Instance`` kind."""
    return {
        slot["name"]: InstanceInputs.model_validate(
            {**slot["inputs"], "image_volume_path": _image(spec, slot)}
        )
        for slot in spec.get("slots") or ()
    }


@dataclass(frozen=True)
class Check:
    """A group's health check beyond "its domain runs" (``kind`` ``cloud-init`` is just that)."""

    kind: str = "cloud-init"
    port: int | None = None
    path: str = "/"
    threshold: int = 3
    timeout: float = 3.0

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> Check:
        """The check of an ``InstanceGroup`` spec."""
        health = spec.get("healthCheck") or {}
        return cls(
            kind=str(health.get("type", "cloud-init")),
            port=health.get("port"),
            path=str(health.get("path", "/")),
            threshold=int(health.get("unhealthyThreshold", 3)),
        )


def probe(check: Check, address: str | None, inputs: InstanceInputs) -> bool:
    """Whether a running member passes ``check`` now.

    The guest is reached at ``address`` (the address it reported at first boot); on a
    ``user`` network, where only SSH is forwarded, port 22 is the host's forwarded port on
    127.0.0.1 and no other port can be reached.
    """
    if check.kind == "cloud-init" or check.port is None:
        return True
    host, port = address, check.port
    if inputs.ssh_port is not None:
        host, port = ("127.0.0.1", inputs.ssh_port) if check.port == 22 else (None, port)
    if host is None:
        return False
    if check.kind == "tcp":
        try:
            with socket.create_connection((host, port), timeout=check.timeout):
                return True
        except OSError:
            return False
    try:
        with urllib.request.urlopen(
            f"http://{host}:{port}{check.path}", timeout=check.timeout
        ) as reply:
            return bool(200 <= reply.status < 400)
    except urllib.error.HTTPError as err:  # an answer, but not 2xx or 3xx
        err.close()
        return False
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class _Making:
    """A member being made in a thread of this process."""

    digest: str
    started: float
    future: concurrent.futures.Future[Any]


@dataclass
class GroupWorker:
    """What one operator process keeps for one group between rounds.

    Attributes:
        name: The group's object name.
        making: Members being made now, by name.
        failures: Consecutive failed health checks, by member.
        cpu: Recent ``(time, cpu_time_ns)`` readings, by member.
        deleted: The group's object is being deleted: members whose making ends now are
            removed at once.
        unanswered: Since when each host of the group (by name) has not answered.
        said: The last round's Events, as ``(reason, message)``.
    """

    name: str
    making: dict[str, _Making] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    deleted: bool = False
    unanswered: dict[str, float] = field(default_factory=dict)
    said: frozenset[tuple[str, str]] = frozenset()


HOST_GRACE = 60.0
"""Seconds a host may not answer before its members are ``lost`` and replaced elsewhere.

Long enough for libvirtd's restart or a dropped SSH connection (which cost a round or
two), short enough that a dead host's members are replaced within about a minute. The
timer is the process's own: a restarted operator waits the whole grace again, which
errs on the side of not making members twice."""


_pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="member")


def _time(value: str | None) -> float | None:
    return dt.datetime.fromisoformat(value).timestamp() if value else None


def _stamp(value: float) -> str:
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Recorded:
    """What the status says of a member.

    Its digest, when it was made and came up, and how to log in to it: its address and
    the SSH host keys it printed at first boot.
    """

    digest: str
    created: float
    phase: str
    address: str | None = None
    ready: float | None = None
    host_keys: tuple[str, ...] = ()


def recorded(status: Mapping[str, Any]) -> dict[str, Recorded]:
    """The members the previous round wrote into the status, by name."""
    found = {}
    for member in status.get("members") or ():
        created = _time(member.get("created"))
        found[member["name"]] = Recorded(
            digest=str(member.get("digest", "")),
            created=created if created is not None else 0.0,
            phase=str(member.get("phase", "")),
            address=member.get("address"),
            ready=_time(member.get("ready")),
            host_keys=tuple(member.get("hostKeys") or ()),
        )
    return found


def memory_of(status: Mapping[str, Any]) -> Memory:
    """What the previous round kept in ``status`` (empty on the first round)."""
    return Memory(
        target=status.get("targetSize"),
        observed_size=status.get("observedSize"),
        recommendations=tuple(
            (t, int(r["size"]))
            for r in status.get("recommendations") or ()
            if (t := _time(r.get("time"))) is not None
        ),
        repairs=tuple(t for value in status.get("repairs") or () if (t := _time(value))),
    )


@dataclass(frozen=True)
class Observed:
    """The group's members as their hosts report them, and their records."""

    members: tuple[MemberView, ...]
    records: Mapping[str, Recorded]
    hosts: Mapping[str, str]
    down: frozenset[str] = frozenset()
    """The slots whose host did not answer this round."""
    events: tuple[Event, ...] = ()
    """A host that stopped answering this round, or answers again."""


def fresh(worker: GroupWorker, events: Sequence[Event]) -> list[Event]:
    """This round's Events less those the last round posted word for word.

    A standing condition (no free slot, repairs rate-limited) is decided again every
    round; posted every round it would be an Event every few seconds for as long as it
    lasts. It is posted when it starts, and again if it ends and comes back.
    """
    new = [e for e in events if (e.reason, e.message) not in worker.said]
    worker.said = frozenset((e.reason, e.message) for e in events)
    return new


def _sample(worker: GroupWorker, name: str, now: float, cpu_time: int | None) -> None:
    if cpu_time is None:
        worker.cpu.pop(name, None)
        return
    readings = worker.cpu.setdefault(name, deque(maxlen=64))
    readings.append((now, cpu_time))


def _cpu_use(
    worker: GroupWorker, name: str, now: float, window: float, vcpus: int, *, since: float
) -> float | None:
    """Its CPU use over the last ``window`` seconds, from readings taken at ``since`` or later.

    ``None`` until those cover half the window. Readings from before ``since`` (its boot
    and initialization) are not load.
    """
    readings = [r for r in worker.cpu.get(name, ()) if now - r[0] <= window and r[0] >= since]
    if len(readings) < 2 or readings[-1][0] - readings[0][0] < window / 2:
        return None
    return libvirt.cpu_share(readings[0], readings[-1], vcpus=vcpus)


def observe(
    worker: GroupWorker,
    spec: Mapping[str, Any],
    records: Mapping[str, Recorded],
    *,
    now: float,
) -> Observed:
    """Read each slot's domain on its host, with this process's members in the making.

    ``records`` are the members the status (and :func:`collect`) know of. A host that
    does not answer (or stops answering mid-read) leaves its recorded members
    ``unreachable``, then ``lost`` once it has not answered for :data:`HOST_GRACE`
    seconds; its slots are in ``down``. The other hosts are read as usual.
    """
    inputs = slot_inputs(spec)
    check = Check.of(spec)
    scaling = spec.get("autoscaling") or {}
    window = float(scaling.get("windowSeconds", 60))
    initialization = float(scaling.get("initializationSeconds", 120))
    by_host: dict[str, list[str]] = {}
    for name, slot in inputs.items():
        by_host.setdefault(slot.host, []).append(name)
    members: list[MemberView] = []
    hosts: dict[str, str] = {}
    down: set[str] = set()
    events: list[Event] = []
    for host, names in sorted(by_host.items()):
        uri = inputs[names[0]].libvirt_uri
        for name in names:
            hosts[name] = host
        try:
            with libvirt.session(uri) as conn:
                found = [
                    _in_the_making(worker, name)
                    or _member(worker, conn, name, inputs[name], records.get(name), check,
                               now=now, window=window, initialization=initialization)
                    for name in names
                ]  # fmt: skip
        except DriverError as err:
            log.warning("%s: host %s does not answer: %s", worker.name, host, err)
            since = worker.unanswered.setdefault(host, now)
            if since == now:
                events.append(
                    Event(
                        "Warning",
                        "HostUnreachable",
                        f"host {host} does not answer ({err}); the members in its slots"
                        f" ({', '.join(names)}) are made elsewhere if it does not answer for"
                        f" {HOST_GRACE:.0f} s",
                    )
                )
            phase: Phase = "lost" if now - since >= HOST_GRACE else "unreachable"
            down.update(names)
            # A member in the making there stays booting: its making fails on its own, and says so.
            found = [
                _in_the_making(worker, name) or _away(worker, name, records.get(name), phase)
                for name in names
            ]
        else:
            if worker.unanswered.pop(host, None) is not None:
                events.append(Event("Normal", "HostAnswers", f"host {host} answers again"))
        members.extend(m for m in found if m is not None)
    present = {m.name for m in members}
    kept = {name: record for name, record in records.items() if name in present}
    return Observed(
        members=tuple(members),
        records=kept,
        hosts=hosts,
        down=frozenset(down),
        events=tuple(events),
    )


def _in_the_making(worker: GroupWorker, name: str) -> MemberView | None:
    """The member this process is making in slot ``name``, booting (``None``: none)."""
    making = worker.making.get(name)
    return None if making is None else MemberView(name, making.digest, "booting", making.started)


def _member(
    worker: GroupWorker,
    conn: libvirt.Session,
    name: str,
    slot: InstanceInputs,
    record: Recorded | None,
    check: Check,
    *,
    now: float,
    window: float,
    initialization: float,
) -> MemberView | None:
    """The member in slot ``name`` as its host reports it (``None``: there is none)."""
    info = conn.domain(slot.name)
    if info is None:
        worker.failures.pop(name, None)
        worker.cpu.pop(name, None)
        return None
    digest = record.digest if record else ""
    created = record.created if record else 0.0
    ready = record.ready if record else None
    phase: Phase
    if record is not None and record.phase == "booting":
        phase = "booting"  # a making this process did not start: resumed in act
    elif info.state != "running":
        phase = "stopped"
    elif probe(check, record.address if record else None, slot):
        worker.failures.pop(name, None)
        phase = "healthy"
    else:
        worker.failures[name] = worker.failures.get(name, 0) + 1
        phase = "unhealthy" if worker.failures[name] >= check.threshold else "healthy"
    _sample(worker, name, now, conn.cpu_time(slot.name) if phase == "healthy" else None)
    since = (ready if ready is not None else created) + initialization
    cpu = _cpu_use(worker, name, now, window, slot.vcpus, since=since)
    return MemberView(name, digest, phase, created, cpu, ready)


def _away(
    worker: GroupWorker, name: str, record: Recorded | None, phase: Phase
) -> MemberView | None:
    """The member in slot ``name`` on a host that did not answer: as recorded, if it is."""
    worker.failures.pop(name, None)
    worker.cpu.pop(name, None)
    if record is None:
        return None
    return MemberView(name, record.digest, phase, record.created, None, record.ready)


def _make(worker: GroupWorker, inputs: InstanceInputs) -> dict[str, Any]:
    """Make one member (in a thread): its data volumes, then the VM, booted to cloud-init.

    Always from scratch: what a member deleted behind the operator's back, a repaired
    one or a killed making left in the slot (disks, seed) goes first. A boot disk kept
    from before would skip cloud-init's first boot: no new host keys printed, and the
    member not what its template makes.
    """
    remove_member(inputs)
    with libvirt.session(inputs.libvirt_uri) as conn:
        for volume in inputs.volumes:
            conn.create_overlay(inputs.pool, volume.volume, backing=None, size_gb=volume.size_gb)
    state = vms.create(inputs, say=lambda line: log.info("%s: %s", worker.name, line))
    if worker.deleted:
        remove_member(inputs)
        return {}
    return {
        "address": state.ssh_host,
        "boot_seconds": state.boot_seconds,
        "host_keys": tuple(state.ssh_host_keys or ()),
    }


def remove_member(inputs: InstanceInputs) -> bool:
    """A member's domain, disks, seed and data volumes (members keep no data).

    Returns whether its domain was there.
    """
    with libvirt.session(inputs.libvirt_uri) as conn:
        found = conn.domain(inputs.name) is not None
        vms.remove(conn, inputs)
        for volume in inputs.volumes:
            conn.delete_volume(inputs.pool, volume.volume)
    return found


def act(
    worker: GroupWorker,
    spec: Mapping[str, Any],
    decision: Decision,
    observed: Observed,
    *,
    now: float,
    secret_env: Callable[[], Mapping[str, str]] | None = None,
) -> dict[str, Recorded]:
    """Carry out ``decision``; return the members' records for the status.

    Deletions happen now; each member to make (a new one, a repair, or one a killed
    process left in the making) starts in a thread and is ``booting`` until it finishes.
    ``secret_env`` reads the members' secret env (once, and only when one is made); each
    is installed with it as a plain instance is.
    """
    inputs = slot_inputs(spec)
    secrets: Mapping[str, str] | None = None
    digests = slot_digests(spec)
    records = dict(observed.records)
    for name in decision.delete:
        if name in inputs and name not in worker.making:
            remove_member(inputs[name])
        records.pop(name, None)
        worker.failures.pop(name, None)
        worker.cpu.pop(name, None)
    resumed = [
        m.name for m in observed.members if m.phase == "booting" and m.name not in worker.making
    ]
    for name in (*decision.repair, *decision.create, *resumed):
        if name in worker.making or name not in inputs:
            continue
        made = inputs[name]
        if secret_env is not None:
            secrets = secret_env() if secrets is None else secrets
            made = made.model_copy(update={"secret_env": dict(secrets)})
        future = _pool.submit(_make, worker, made)
        worker.making[name] = _Making(digest=digests[name], started=now, future=future)
        records[name] = Recorded(digest=digests[name], created=now, phase="booting")
        worker.failures.pop(name, None)
        worker.cpu.pop(name, None)
    return records


@dataclass(frozen=True)
class Said:
    """How the end of a making is said: the Events' reasons and what follows the name."""

    ready: str = "MemberReady"
    up: str = "is up"
    failed: str = "MemberFailed"
    down: str = "did not come up"


def collect(
    worker: GroupWorker, records: dict[str, Recorded], *, now: float, said: Said = Said()
) -> list[Event]:
    """Members whose making ended since the last round: recorded, and their Events."""
    events: list[Event] = []
    for name, making in list(worker.making.items()):
        if not making.future.done():
            continue
        del worker.making[name]
        error = making.future.exception()
        if error is None:
            result = making.future.result()
            records[name] = Recorded(
                digest=making.digest,
                created=making.started,
                phase="healthy",
                address=result.get("address"),
                ready=now,
                host_keys=tuple(result.get("host_keys") or ()),
            )
            took = now - making.started
            events.append(Event("Normal", said.ready, f"{name} {said.up} ({took:.0f} s)"))
        else:
            records.pop(name, None)
            why = (
                str(error) if isinstance(error, UnkaiError) else f"{type(error).__name__}: {error}"
            )
            events.append(Event("Warning", said.failed, f"{name} {said.down}: {why}"))
    return events


def record_entry(name: str, record: Recorded, *, host: str, phase: str) -> dict[str, Any]:
    """A VM's entry in its object's ``status.members``: its record, its host and phase."""
    entry: dict[str, Any] = {
        "name": name,
        "host": host,
        "digest": record.digest,
        "phase": phase,
        "created": _stamp(record.created),
    }
    if record.address:
        entry["address"] = record.address
    if record.ready is not None:
        entry["ready"] = _stamp(record.ready)
    if record.host_keys:
        entry["hostKeys"] = list(record.host_keys)
    return entry


def status_of(
    decision: Decision,
    observed: Observed,
    records: Mapping[str, Recorded],
    spec: Mapping[str, Any],
    *,
    generation: int = 0,
) -> dict[str, Any]:
    """The group's ``status`` after a round: its memory and its members.

    ``observedGeneration`` is the object's generation this round acted on; ``targetSize``,
    ``healthyMembers`` and ``updatedMembers`` then say whether the group has settled
    (``unkai up`` waits for that).
    """
    digests = slot_digests(spec)
    views = {m.name: m for m in observed.members}
    members = []
    for name in sorted(records, key=lambda n: (len(n), n)):
        record = records[name]
        view = views.get(name)
        phase = record.phase if record.phase == "booting" else (view.phase if view else "missing")
        entry = record_entry(name, record, host=observed.hosts.get(name, ""), phase=phase)
        if view is not None and view.cpu is not None:
            entry["cpuPercent"] = round(view.cpu * 100)
        members.append(entry)
    memory = decision.memory
    return {
        "observedGeneration": generation,
        "targetSize": decision.target,
        "observedSize": memory.observed_size,
        "healthyMembers": sum(1 for m in members if m["phase"] == "healthy"),
        "updatedMembers": sum(
            1 for m in members if m["phase"] == "healthy" and m["digest"] == digests.get(m["name"])
        ),
        "members": members,
        "recommendations": [{"time": _stamp(t), "size": s} for t, s in memory.recommendations],
        "repairs": [_stamp(t) for t in memory.repairs],
    }


def remove_all(worker: GroupWorker, spec: Mapping[str, Any]) -> list[str]:
    """Every member of a group being deleted (those in the making go when they finish)."""
    worker.deleted = True
    removed = []
    for name, inputs in slot_inputs(spec).items():
        if name in worker.making:
            continue
        if remove_member(inputs):
            removed.append(name)
    return removed


def wait_made(worker: GroupWorker, timeout: float) -> None:
    """Wait for the members in the making (a deleted group's remove themselves as they end)."""
    concurrent.futures.wait([m.future for m in worker.making.values()], timeout=timeout)

"""The dataset-plugin contract: what a plugin says about its data set.

A dataset plugin subclasses :class:`DatasetPlugin` and returns an instance from the
``sd_datasets`` hook. It answers four questions and the core does everything else:

1. Which subjects and recordings are there, with which labels?  (:meth:`find_subjects`)
2. How is one recording opened?  (:meth:`read_raw`, default: ``mne.io.read_raw``)
3. Which channels make the image?  (:attr:`channels`, names in 10–20 notation; the old and new
   names T3/T7, T4/T8, T5/P7, T6/P8 are interchangeable)
4. What labels does each window carry beyond its recording's?  (:meth:`label_windows`; labels
   from events stored in the file come from :meth:`DatasetPlugin.events`, read when the core
   opened the file)

Objects here must be picklable: preprocessing sends them to worker processes.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from sd_core.plugins.specs import OptionSpec

if TYPE_CHECKING:  # pragma: no cover
    import mne

#: The 19 channels of the 10–20 system that every data set shares. The original project used
#: these plus one more per data set (20 in all); a plugin appends its own twentieth.
TEN_TWENTY_19 = (
    "Fp1", "Fp2", "F3", "F4", "Fz", "F7", "F8", "C3", "C4", "Cz",
    "P3", "P4", "Pz", "O1", "O2", "T7", "T8", "P7", "P8",
)


@dataclass(frozen=True)
class Recording:
    """One stretch of signal that becomes a run of windows.

    id:     unique within its subject; image files are named ``<id>-<index>.png``.
    path:   the file to open.
    labels: recording-level metadata columns (``doing_math``, ``session``, ``trial``, ``emotion``).
    start, stop: seconds within the file to use (None = from the start / to the end), for
            example one SEED-V trial of a session file. Only this span is read.
    extra:  anything else the plugin needs later (for example seizure intervals); not written
            to the metadata.
    """

    id: str
    path: Path
    labels: Mapping[str, Any] = field(default_factory=dict)
    start: float | None = None
    stop: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """One event (annotation) of a recording's file: ``onset`` and ``duration`` in seconds from the
    file's first sample (the time base of the spans :meth:`DatasetPlugin.label_windows` gets),
    ``description`` its text (an EDF+ annotation, a BIDS events row, a marker)."""

    onset: float
    duration: float
    description: str

    @property
    def stop(self) -> float:
        return self.onset + self.duration

    def overlap(self, start: float, stop: float) -> float:
        """Seconds of ``start``…``stop`` inside the event."""
        return max(0.0, min(stop, self.stop) - max(start, self.onset))


#: Where :func:`remember_events` leaves a recording's events (in ``Recording.extra``).
_EVENTS = "_sd_events"


def events_of(raw: Any) -> list[Event]:
    """The annotations of an opened MNE ``Raw`` as events, onsets from the file's first sample.
    MNE parses them when it opens the file (EDF+, BDF+, EEGLAB, BrainVision markers), so this
    reads nothing more."""
    ann = raw.annotations
    shift = float(raw.first_time) if ann.orig_time is not None else 0.0
    return [Event(round(float(o) - shift, 6), float(d), str(t))
            for o, d, t in zip(ann.onset, ann.duration, ann.description)]


def remember_events(recording: Recording, raw: Any) -> None:
    """Keep the events of the just-opened ``raw`` with ``recording``, for :meth:`DatasetPlugin.events`.

    The default :meth:`DatasetPlugin.read_raw` calls it; a plugin with its own ``read_raw`` calls
    it before returning the Raw (the core opens each recording once, then labels its windows)."""
    if isinstance(recording.extra, MutableMapping):
        recording.extra[_EVENTS] = tuple(events_of(raw))


@dataclass(frozen=True)
class Subject:
    """One person. ``labels`` holds the canonical labels ``gender`` (``F``/``M``), ``health``
    (``H``, ``PD``, ...), ``age`` (integer years) and any data-set columns; a canonical label that
    is unknown for the person is ``None`` (an empty cell in the metadata, a row without a target
    for that task)."""

    id: str
    labels: Mapping[str, Any]
    recordings: Sequence[Recording]


class DatasetPlugin:
    """Base class of a dataset preprocessor. Override what differs from the defaults."""

    #: What users type: ``sd preprocess --dataset <name>``. Also the output folder name.
    name: str = ""
    #: One line for ``sd datasets``.
    title: str = ""
    #: Channels of the image, in order (left to right), by name. A name listed twice picks the
    #: first and the second channel of that name; ``"*"`` stands for every other channel of the
    #: file in file order, ``"!NAME"`` leaves one out of it.
    channels: Sequence[str] = TEN_TWENTY_19
    #: The STFT hop is a multiple of this (the original project used 4 for EEGMAT and
    #: Parkinson's, 8 for SEED-V and CHB-MIT); ``hop = "smallest"`` in sd.toml ignores it.
    hop_multiple: int = 4
    #: The data set's own metadata columns, in the order they appear after the canonical ones.
    #: A task (``sd_tasks``, of any plugin) reads only these and the columns every row has
    #: (:data:`sd_core.plugins.specs.ROW_COLUMNS`); one reading another column is refused at load.
    columns: Sequence[str] = ()
    #: The data set's natural preprocessing values (keys of ``[preprocess]``: ``fs``, ``nsamps``,
    #: ``overlap``, ``resolution``, ...), used instead of sd's defaults; ``sd.toml`` (its
    #: ``[preprocess]`` or ``[datasets.<name>]``) and command-line options still override them.
    #: Checked when plugins load.
    preprocess_defaults: Mapping[str, Any] = {}
    #: Options users may set in ``[datasets.<name>]`` of ``sd.toml``, with defaults and help.
    options: Mapping[str, OptionSpec] = {}
    #: The task the data set is mostly used for (``sd demo`` trains and reports it); "" = none.
    main_task: str = ""

    # -- discovery --------------------------------------------------------------------------

    def raw_found(self, root: Path) -> bool:
        """Cheap check for ``sd datasets``: does ``root`` look like this data set?"""
        return root.is_dir() and any(root.iterdir())

    def find_subjects(self, root: Path, options: Mapping[str, Any]) -> list[Subject]:
        """All subjects under ``root`` with their labels and recordings.

        Raise :class:`sd_core.errors.DatasetError` for problems that stop the whole data set
        (root missing, participants table missing). A single subject whose files are missing
        should still be returned: the core reports it when opening the recording fails.
        """
        raise NotImplementedError

    # -- reading ----------------------------------------------------------------------------

    def read_raw(self, recording: Recording, options: Mapping[str, Any]) -> mne.io.BaseRaw:
        """Open a recording without loading its samples (``preload=False``).

        The core picks channels, crops to ``recording.start``/``stop`` and loads only that. The
        default also keeps the file's annotations for :meth:`events`; an override that wants them
        calls :func:`remember_events` (``remember_events(recording, raw)``) before returning.
        """
        import mne

        raw = mne.io.read_raw(recording.path, preload=False, verbose="error")
        remember_events(recording, raw)
        return raw

    def channel_name(self, raw_name: str) -> str:
        """Map a channel name of the file to 10–20 notation (default: drop an ``EEG`` prefix
        and a reference suffix such as ``-REF``/``-LE``)."""
        from sd_core.signals.channels import clean_channel_name

        return clean_channel_name(raw_name)

    # -- labels -----------------------------------------------------------------------------

    def label_windows(
        self,
        recording: Recording,
        spans: Sequence[tuple[float, float]],
        options: Mapping[str, Any],
    ) -> list[dict[str, Any] | None]:
        """Labels for each window of a recording, given its (start, stop) seconds in the file.

        Return one dict per span (merged over the subject's and recording's labels), or None
        to leave that window out. The default adds nothing. For labels from events in the file,
        call :meth:`events` here: it hands over what was read when the file was opened.
        """
        return [{} for _ in spans]

    def events(self, recording: Recording, options: Mapping[str, Any] | None = None) -> list[Event]:
        """The events (annotations) of the recording's file, onsets in seconds from its first
        sample: those :meth:`read_raw` kept when the core opened the file, else (outside
        preprocessing, say in a test) read with ``read_raw(recording, options)`` now."""
        extra = recording.extra if isinstance(recording.extra, Mapping) else {}
        if _EVENTS not in extra:
            raw = self.read_raw(recording, options or {})
            if _EVENTS not in extra:
                return events_of(raw)
        return list(extra[_EVENTS])

    def caption(self, row: Mapping[str, Any]) -> str:
        """A plain sentence describing a metadata row (used to condition diffusion models)."""
        from sd_core.plugins.captions import describe_subject

        return describe_subject(row)

    # -- demo -------------------------------------------------------------------------------

    def write_demo(self, root: Path, seed: int = 0) -> None:
        """Write a small synthetic raw data set in the data set's native layout under ``root``.

        Plugins without a demo writer leave this unimplemented; ``sd demo`` skips them. A writer
        may take keyword arguments for larger demos (see :meth:`demo_size`).
        """
        raise NotImplementedError

    def demo_size(self, size: str, scale: float = 1.0) -> tuple[dict[str, Any], int]:
        """Keyword arguments of :meth:`write_demo` for a demo of ``size`` and the bytes it writes
        (an estimate, checked against the free disk before anything is written).

        ``"small"``: the default demo (no arguments). ``"full"``: the real data set's subject
        count and recording hours, times ``scale`` (0 < scale ≤ 1). A plugin without a full-size
        demo leaves this as it is; ``sd demo --size full`` then says so.
        """
        if size == "small":
            return {}, 0
        raise ValueError(f"data set {self.name!r} has no {size}-size demo")

    @property
    def has_demo(self) -> bool:
        return type(self).write_demo is not DatasetPlugin.write_demo

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

"""The one state a manager keeps, and the decisions made on it.

`ManagerState` holds everything the shim knows beside v0's own protected
attributes (`_directory` and `_options`, which stay plain attributes of the
manager as in v0: subclasses read and set them, paxml's before
`super().__init__`). v0 calls through the manager and v1 calls through its
`v1_checkpointer` share it. Each decision about items is made here, once:
whether the manager holds one unnamed item (`decide_single_item`), which
handler an item is bound to (`handler_for`, `register`, `item_handler`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from etils import epath
from orbax.checkpoint import args as v0_args

from orbax_compat.handlers import bridges
from orbax_compat.handlers import table
from orbax_compat.mapping import forms
from orbax_compat.runtime import options as options_lib


@dataclasses.dataclass(eq=False)
class ManagerState:
  """What one manager holds, shared by its v0 and v1 views."""

  ckptr: Any  # The v1 training.Checkpointer (`v1_checkpointer`).
  infos: Any  # v1's inner v0 CheckpointInfos: the steps listed (updated by v1).
  context: Any  # The v1 Context entered around saves and loads (stays live).
  registry: Any  # Its v1 handler registry: item name -> handler type.
  # Item name -> the v1 handler it is bound to, as v0's handler registry.
  known_items: dict[str, type] = dataclasses.field(default_factory=dict)
  # One unnamed item (True), named items (False), or not decided (None): v0
  # decides on the first save or restore (`decide_single_item`).
  single_item: bool | None = None
  legacy: Any = None  # legacy.Legacy: checkpointers=/item_names/handler_registry.
  in_flight: Any = None  # inflight.SaveInFlight of the last save started.
  step_logger: Any = None  # step_logging.StepStatisticsLogger (None: from_v1).
  closed: bool = False
  root_metadata: dict[str, Any] | None = None  # As given to the constructor.

  @property
  def kind(self) -> str:
    """The manager's kind as the mapping's forms name it ('' undecided)."""
    if self.single_item is None:
      return ''
    return 'single_item' if self.single_item else 'named_items'


# --- v0's calls through `self` ------------------------------------------------

_PROPERTIES = frozenset(m.name for m in forms.MEMBERS if m.kind == 'property')


def own(m, name: str, implementation, *args):
  """v0's `self.<name>(*args)`: the subclass's override where `type(m)` has
  one (it then runs as in v0), else `implementation(m, *args)`, no notice."""
  if name in type(m).overridden_members:
    member = getattr(m, name)
    return member if name in _PROPERTIES else member(*args)
  return implementation(m, *args)


def step_path(m, step: int, root: epath.Path | None = None) -> epath.Path:
  """The directory of `step` under `root` (the manager's), named as v0 names it."""
  return (root or m._directory) / options_lib.step_name_format(m._options).build_name(step)


# --- Items --------------------------------------------------------------------

# v0's CompositeCheckpointHandler, for a None entry of an item it knows no handler for.
NONE_FOR_UNKNOWN_ITEM = (
    'Provided `None` for `CheckpointArgs`, and the `CheckpointHandler`'
    ' for item "{name}" was not configured. If saving, this'
    ' indicates that "{name}" was saved with `None` (an instance'
    ' of `CheckpointArgs` was expected). If restoring, providing'
    ' `None` for the item is valid, but only if the `CheckpointHandler'
    ' was already configured. Provide a `CheckpointArgs` subclass so'
    ' that `CompositeCheckpointHandler` will know how to restore the'
    ' item.'
)


def decide_single_item(state: ManagerState, *, args: Any = None, items: Any = None,
                       step_dir: epath.Path | None = None) -> bool:
  """v0's decision, on first use: one unnamed item or named items.

  A save decides by its args (a Composite: named items; legacy `items`
  without args: one item); a restore or metadata read by the step (a
  `default` item: one unnamed item). Legacy configurations decide at
  construction (`legacy.Legacy.default_item`).
  """
  if state.single_item is None:
    if args is not None:
      state.single_item = not isinstance(args, v0_args.Composite)
    elif items is not None:
      state.single_item = True
    elif step_dir is not None:
      state.single_item = (step_dir / table.DEFAULT_ITEM).exists()
  return bool(state.single_item)


def validate_args(state: ManagerState, items: Any, args: Any) -> None:
  """v0's checks of `items`/`args` (messages name the argument)."""
  if isinstance(items, v0_args.CheckpointArgs):
    raise ValueError(
        'Found an instance of `CheckpointArgs` provided for `items`. This may'
        ' be due to misuse of the newer API - make sure to specify the'
        ' argument keyword (e.g. `args=args`).'
    )
  if args is None:
    return
  if not isinstance(args, v0_args.CheckpointArgs):
    raise ValueError(
        f'Expected `args` of type `CheckpointArgs`; found {type(args)}.'
    )
  composite = isinstance(args, v0_args.Composite)
  if state.single_item and composite:
    raise ValueError(
        'Cannot provide `args` of type `Composite` when dealing with a'
        ' single, unnamed (default) checkpointable object.'
    )
  if not state.single_item and not composite:
    raise ValueError(
        'Must provide `args` of type `Composite` when dealing with'
        ' multiple checkpointable objects.'
    )


def handler_for(state: ManagerState, name: str, arg: Any) -> type | None:
  """The handler `arg` saves or loads item `name` with (v0's registry lookup).

  With `item_names`/`item_handlers`/`checkpointers`, v0 knows only those
  item names and refuses others, before anything is written.
  """
  legacy = state.legacy
  if legacy is not None and legacy.item_names is not None and arg is not None:
    if name not in legacy.item_names and name != table.METRICS_ITEM:
      raise ValueError(
          f'Item "{name}" and args "{table.shown(arg)}" does not match with any registered'
          f' handler! The manager was configured with items '
          f'{sorted(legacy.item_names)} (`item_names`, `item_handlers` or '
          '`checkpointers`); add the item there.'
      )
  return table.handler_for(
      arg, state.known_items.get(name), legacy.by_args if legacy else None
  )


def register(state: ManagerState, name: str, arg: Any, handler_type: type | None) -> None:
  """Binds an item name to a handler on first use, like v0's registry.

  As in v0, an item keeps the handler its first save or restore chose; args
  of another handler for it later are refused.
  """
  if handler_type is None:
    return
  known = state.known_items.get(name)
  if known is not None:
    if known is not handler_type:
      raise ValueError(
          f'Item "{name}" and args "{table.shown(arg)}" does not match with any registered'
          f' handler! Item {name!r} is handled by {known.__qualname__}; pass'
          f' args of that handler for it.'
      )
    return
  state.registry.add(handler_type, checkpointable_name=name)
  state.known_items[name] = handler_type


def item_handler(state: ManagerState, name: str) -> type | None:
  """The handler v0's registry holds for an item (v0 always registers metrics)."""
  if name == table.METRICS_ITEM:
    return bridges.MetricsHandler
  return state.known_items.get(name)

"""The v1 constructor for a v0 manager's options, as source code.

`v1_source(mngr)` (or `v1_source(directory, options, metadata)`) returns a
`ocp_v1.training.Checkpointer(...)` expression with every policy and Context
option spelled out. It renders the very objects the shim hands to v1 for
those options (`option_map.checkpointer_kwargs`, `option_map.configure_context`),
so the Checkpointer it builds decides what to save and keep as the v0 manager
does (`tests/test_v1_config.py` runs both over the options matrix). It is an
expression: evaluate it with `ocp_v1` (`from orbax.checkpoint.experimental
import v1 as ocp_v1`) and the v0 `options` bound (user functions such as
`best_fn` are referenced as `options.best_fn`). An option v1 cannot express
is named in a comment inside the expression, never dropped.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import types
from typing import Any

from etils import epath

from orbax_compat.compat import profiles
from orbax_compat.compat.orbax import v1
from orbax_compat.handlers import settings as settings_lib
from orbax_compat.mapping import options as mapping_options
from orbax_compat.runtime import options as options_lib

# Context option groups the shim sets: Context(<keyword>=...) -> its attribute.
_CONTEXT_GROUPS = {
    'pytree_options': 'pytree_options', 'array_options': 'array_options',
    'async_options': 'async_options', 'multiprocessing_options': 'multiprocessing_options',
    'file_options': 'file_options', 'deletion_options': 'deletion_options',
    'atomicity_options': 'atomicity', 'memory_options': 'memory_options',
}
def _public_paths() -> dict[Any, str]:
  """v1 class -> the dotted name users write, under `ocp_v1`."""
  paths: dict[Any, str] = {}

  def walk(obj: Any, path: str) -> None:
    for name in dir(obj):
      if name.startswith('_'):
        continue
      value = getattr(obj, name)
      if isinstance(value, type) and value not in paths:
        paths[value] = f'{path}.{name}'
        walk(value, f'{path}.{name}')  # Nested option classes (ArrayOptions.Saving).

  walk(v1.training.save_decision_policies, 'ocp_v1.training.save_decision_policies')
  walk(v1.training.preservation_policies, 'ocp_v1.training.preservation_policies')
  walk(v1.options, 'ocp_v1.options')
  return paths


class _Renderer:
  """Python source for v1 objects; user functions by their option field."""

  def __init__(self, options: Any):
    self._paths = _public_paths()
    self._functions = {
        id(value): _function_source(name, value)
        for name, value in _option_functions(options).items()
    }
    if options.temporary_path_class is not None:  # In 0.12.0's v1 FileOptions.
      self._functions[id(options.temporary_path_class)] = 'options.temporary_path_class'

  def __call__(self, value: Any, default: Any = dataclasses.MISSING, indent: int = 0) -> str:
    if id(value) in self._functions:
      return self._functions[id(value)]
    if isinstance(value, options_lib.ShouldSaveFnPolicy):
      return self._should_save_fn_policy(indent)
    if isinstance(value, options_lib.ShouldKeepFnPolicy):
      return self._should_keep_fn_policy(value, indent)
    if isinstance(value, enum.Enum):
      return f'{self._path(type(value))}.{value.name}'
    if isinstance(value, (list, tuple)):
      opening, closing = ('[', ']') if isinstance(value, list) else ('(', ')')
      items = [self(v, indent=indent + 4) for v in value]
      if sum(len(i) for i in items) < 60 and not any('\n' in i for i in items):
        trailing = ',' if len(items) == 1 and opening == '(' else ''
        return f'{opening}{", ".join(items)}{trailing}{closing}'
      pad = ' ' * (indent + 4)
      return opening + ''.join(f'\n{pad}{i},' for i in items) + f'\n{" " * indent}{closing}'
    if isinstance(value, (set, frozenset)):
      return f'{type(value).__name__}({sorted(value)!r})' if value else f'{type(value).__name__}()'
    if isinstance(value, datetime.timedelta):
      return f'datetime.timedelta(seconds={value.total_seconds()!r})'
    if isinstance(value, (type(None), bool, int, float, str, dict)):
      return repr(value)
    if dataclasses.is_dataclass(value):
      return self._dataclass(value, default, indent)
    if type(value) in self._paths and not vars(value):
      return f'{self._path(type(value))}()'  # A policy without settings.
    raise TypeError(f'orbax_compat cannot write {value!r} as v1 source')

  def _path(self, cls: type) -> str:
    try:
      return self._paths[cls]
    except KeyError:
      raise TypeError(f'{cls.__qualname__} is not part of Orbax v1\'s public API') from None

  def _dataclass(self, value: Any, default: Any, indent: int) -> str:
    if default is dataclasses.MISSING:
      try:
        default = type(value)()
      except TypeError:
        default = None
    pad = ' ' * (indent + 4)
    fields = []
    for field in dataclasses.fields(value):
      if not field.init:
        continue
      current = getattr(value, field.name)
      base = getattr(default, field.name, dataclasses.MISSING)
      if base is not dataclasses.MISSING and _same(current, base):
        continue
      fields.append(f'{field.name}={self(current, base, indent + 4)}')
    if not fields:
      return f'{self._path(type(value))}()'
    if sum(len(f) for f in fields) < 60:
      return f'{self._path(type(value))}({", ".join(fields)})'
    body = ''.join(f'\n{pad}{f},' for f in fields)
    return f'{self._path(type(value))}({body}\n{" " * indent})'

  def _should_save_fn_policy(self, indent: int) -> str:
    """v1 has no policy taking a function: a minimal one calling yours."""
    pad = ' ' * (indent + 4)
    return (
        f'type(\'ShouldSaveFnPolicy\', (), {{\n{pad}\'should_save\': lambda self, step, '
        f'previous_steps, *, context: options.should_save_fn(\n{pad}    step.step, '
        f'previous_steps[-1].step if previous_steps else None),\n{" " * indent}}})()'
    )


  def _should_keep_fn_policy(self, value: Any, indent: int) -> str:
    """v0's `should_keep_fn` (0.12.0-0.12.1) beside the other policies."""
    pad = ' ' * (indent + 4)
    return (
        f'type(\'ShouldKeepFnPolicy\', (), {{\n{pad}\'policy\': '
        f'{self(value.policy, indent=indent + 4)},\n{pad}\'should_preserve\': lambda self, '
        f'checkpoints, *, context: [\n{pad}    kept or bool(options.should_keep_fn(c.step))\n'
        f'{pad}    for kept, c in zip(self.policy.should_preserve(checkpoints, '
        f'context=context), checkpoints)],\n{" " * indent}}})()'
    )


def _function_source(field: str, fn: Any) -> str:
  """A user function by its own name (a plain named function), else as the
  option field holding it (`options.best_fn`)."""
  name = getattr(fn, '__name__', '')
  if isinstance(fn, types.FunctionType) and name.isidentifier() and name != '<lambda>' and (
      '<locals>' not in fn.__qualname__):
    return name
  return field


def _same(a: Any, b: Any) -> bool:
  try:
    return bool(a == b)
  except Exception:  # pylint: disable=broad-except
    return a is b


def _option_functions(options: Any) -> dict[str, Any]:
  """`options.<field>` -> value, for every callable the options hold."""
  out = {}
  for field in dataclasses.fields(options):
    value = getattr(options, field.name)
    if callable(value) and isinstance(value, (types.FunctionType, types.MethodType,
                                              types.BuiltinFunctionType)):
      out[f'options.{field.name}'] = value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
      for sub in dataclasses.fields(value):
        inner = getattr(value, sub.name)
        if isinstance(inner, (types.FunctionType, types.MethodType)):
          out[f'options.{field.name}.{sub.name}'] = inner
  return out


def _context_kwargs(render: _Renderer, context: Any) -> list[str]:
  default = v1.Context()
  out = []
  for group, attribute in _CONTEXT_GROUPS.items():
    if not hasattr(default, attribute):  # Context().atomicity: orbax-checkpoint 0.12.3.
      continue
    value, base = getattr(context, attribute), getattr(default, attribute)
    if not _same(value, base):
      out.append(f'{group}={render(value, base, 8)}')
  return out


def _manager_settings(mngr: Any) -> tuple[Any, Any, Any, Any]:
  state = mngr._state  # pylint: disable=protected-access
  return mngr._directory, mngr._options, state.root_metadata, state.context  # pylint: disable=protected-access


def v1_source(
    mngr_or_directory: Any, options: Any = None, metadata: Any = None, *,
    directory_source: str | None = None,
) -> str:
  """The `ocp_v1.training.Checkpointer(...)` expression for a v0 manager.

  Args:
    mngr_or_directory: an orbax_compat CheckpointManager, or a root directory.
    options: the v0 CheckpointManagerOptions (with a directory; default v0's).
    metadata: the root metadata (with a directory).
    directory_source: code for the directory argument (default: its repr).

  Returns:
    Source of an expression; `eval` it with `namespace(options)`: `ocp_v1`,
    `options`, and your named functions (best_fn, ...) by their names.
  """
  if isinstance(mngr_or_directory, (str, epath.PathLike)) or hasattr(
      mngr_or_directory, '__fspath__'):
    directory = mngr_or_directory
    options = options or options_lib.CheckpointManagerOptions()
    context = v1.Context()
    context.array.saving.use_zarr3 = False
    settings_lib.set_v0_pytree_defaults(context)
    profiles.apply(context)
    refused = options_lib.refused(options)
    options_lib.configure_context(
        _without_refused(options) if refused else options, context)
  else:
    directory, options, metadata, context = _manager_settings(mngr_or_directory)
    refused = []
  render = _Renderer(options)
  kwargs = options_lib.checkpointer_kwargs(_without_refused(options))
  lines = [f'{directory_source or repr(str(directory))},']
  context_kwargs = _context_kwargs(render, context)
  if context_kwargs:
    inner = ''.join(f'\n        {kw},' for kw in context_kwargs)
    lines.append(f'context=ocp_v1.Context({inner}\n    ),')
  lines.append(f'save_decision_policy={render(kwargs["save_decision_policy"], indent=4)},')
  lines.append(f'preservation_policy={render(kwargs["preservation_policy"], indent=4)},')
  if kwargs['step_name_format'] is not None:
    lines.append(f'step_name_format={_step_name_format(options)},')
  if options.save_root_metadata and not options.read_only and metadata is not None:
    lines.append(f'custom_metadata={dict(metadata)!r},')
  elif metadata is not None:
    lines.append('# custom_metadata: not written (save_root_metadata=False or read_only)')
  for flag in ('cleanup_tmp_directories', 'lightweight_initialize'):
    if kwargs[flag]:
      lines.append(f'{flag}=True,')
  for row in mapping_options.OPTIONS:
    if row.instead and options_lib.is_set(options, row.field):
      lines.append(f'# CheckpointManagerOptions.{row.field} has no v1 form: {row.instead}.')
  for field in refused:
    lines.append(f'# (orbax_compat refuses {field} for a v0 manager too.)')
  body = ''.join(f'\n    {line}' for line in lines)
  return f'ocp_v1.training.Checkpointer({body}\n)'


def _step_name_format(options: Any) -> str:
  if options.step_name_format is not None:
    return 'options.step_name_format'
  args = []
  for field in ('step_prefix', 'step_format_fixed_length', 'single_host_load_and_broadcast'):
    value = getattr(options, field)
    if value:
      args.append(f'{field}={value!r}')
  return f'ocp_v1.path.step.standard_name_format({", ".join(args)})'


def _without_refused(options: Any) -> Any:
  """`options` less the settings v1 cannot take (named in comments instead)."""
  changes = {}
  refused = options_lib.refused(options)
  if 'async_options.barrier_sync_fn' in refused:
    changes['async_options'] = dataclasses.replace(options.async_options, barrier_sync_fn=None)
  if 'multiprocessing_options.active_processes' in refused:
    changes['multiprocessing_options'] = dataclasses.replace(
        options.multiprocessing_options, active_processes=None)
  if 'temporary_path_class' in refused:
    changes['temporary_path_class'] = None
  return dataclasses.replace(options, **changes) if changes else options


def namespace(options: Any) -> dict[str, Any]:
  """What `v1_source`'s expression needs bound to evaluate."""
  names = {'ocp_v1': v1, 'options': options, 'datetime': datetime}
  for field, fn in _option_functions(options).items():
    source = _function_source(field, fn)
    if source.isidentifier():  # `options.best_fn` needs only `options`.
      names.setdefault(source, fn)
  return names


_OPTION_GROUPS = {
    'async_options': 'AsyncOptions', 'file_options': 'FileOptions',
    'multiprocessing_options': 'MultiprocessingOptions',
    'atomicity_options': 'AtomicityOptions',
}


def options_from_json(spec: dict[str, Any]) -> Any:
  """CheckpointManagerOptions from JSON values (command line).

  Durations are seconds; option groups (`async_options`, ...) are objects of
  their fields. Raises ValueError naming an unknown field.
  """
  from orbax.checkpoint import options as v0_options  # pylint: disable=g-import-not-at-top

  fields = {f.name for f in dataclasses.fields(options_lib.CheckpointManagerOptions)}
  kw = {}
  for name, value in spec.items():
    if name not in fields:
      raise ValueError(f'unknown CheckpointManagerOptions field {name!r}; fields: '
                       f'{", ".join(sorted(fields))}')
    if name == 'keep_time_interval' and value is not None:
      value = datetime.timedelta(seconds=value)
    elif name in _OPTION_GROUPS and isinstance(value, dict):
      value = getattr(v0_options, _OPTION_GROUPS[name])(**value)
    elif name == 'save_on_steps' and value is not None:
      value = frozenset(value)
    kw[name] = value
  return options_lib.CheckpointManagerOptions(**kw)


def main(argv: list[str] | None = None, prog: str = 'python -m orbax_compat v1-config') -> int:
  """`python -m orbax_compat v1-config DIRECTORY [--options FILE|-] [--metadata JSON]`."""
  import argparse  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  parser = argparse.ArgumentParser(
      prog=prog,
      description='Print the v1 training.Checkpointer(...) for v0 CheckpointManagerOptions '
                  '(from inside a program: orbax_compat.v1_source(mngr)).',
  )
  parser.add_argument('directory', help='the checkpoint root')
  parser.add_argument('--options', metavar='FILE',
                      help='JSON object of CheckpointManagerOptions fields ("-": stdin); '
                           'durations in seconds, option groups as objects')
  parser.add_argument('--metadata', metavar='JSON', help='root metadata, a JSON object')
  ns = parser.parse_args(argv)
  try:
    spec = {}
    if ns.options:
      text = sys.stdin.read() if ns.options == '-' else open(ns.options).read()  # pylint: disable=unspecified-encoding
      spec = json.loads(text)
    options = options_from_json(spec)
    metadata = json.loads(ns.metadata) if ns.metadata else None
  except (OSError, ValueError, TypeError) as e:
    parser.error(str(e))
  print(f'from orbax.checkpoint.experimental import v1 as ocp_v1\n\nckptr = '
        f'{v1_source(ns.directory, options, metadata)}')
  return 0

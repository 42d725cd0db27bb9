"""Every v0 `CheckpointManager` member, its forms, and the v1 code of each.

The heart of orbax_compat, as data: the manager's members, the deprecation
notices, `MIGRATION_TABLE.md`, the type stub and the scanner all read it. One
member per row, one form per line: `F(v0 call, v1 code, flags)`. Each v1
code runs as written (`tests/test_templates.py` runs every one on a real v1
`training.Checkpointer`, against steps written by native v0 and by the shim);
its value is its last expression. Placeholders are named in `PLACEHOLDERS`;
v1 code may also use `ocp_v1` (`V1_IMPORT`), `jax`, `np` and builtins.

Flags: `mechanical` ('expression' | 'statement': a tool may rewrite the call),
`when` ('single_item' | 'named_items': chosen at run time by the manager's
kind), `unless` (options under which a rewrite changes behaviour), `requires`
(options the rewrite is exact only with), `needs` (a v1 surface some supported
releases lack: `CAPABILITIES`), `note`. A placeholder named after an option
(`best_fn`) stands for the manager's value of it.

Where v0's behaviour takes more than one expression to write in v1, the v1
code calls a function of `HELPERS` (each is plain v1 code, written into the
user's module by `scan --to-v1` where a rewrite needs it, and listed in
MIGRATION_TABLE.md#helpers).
"""

from __future__ import annotations

from orbax_compat.mapping.schema import ArgsType
from orbax_compat.mapping.schema import Capability
from orbax_compat.mapping.schema import Form as F
from orbax_compat.mapping.schema import Member

V1_IMPORT = 'from orbax.checkpoint.experimental import v1 as ocp_v1'
TABLE_FILE = 'MIGRATION_TABLE.md'

# v1 surfaces only some supported releases have (compat.orbax detects each).
CAPABILITIES = {
    'v1_delete': Capability('ckptr.delete', '0.12.8'),
}

# Functions v1 code may call: v0 behaviour that needs more than one expression
# of v1 (each is plain v1 code; `jax` and `np` are its only other names).
HELPERS = {
    'v0_standard_abstract': '''\
def v0_standard_abstract(ckptr, step, abstract_tree, item='default'):
  """The v1 abstract tree that loads what v0's StandardRestore loads."""
  # v0 loads a jax.ShapeDtypeStruct without a sharding with the sharding the
  # checkpoint recorded, or as a numpy array where it recorded none.
  saved = {
      jax.tree_util.keystr(path, simple=True, separator='/'): leaf
      for path, leaf in jax.tree_util.tree_leaves_with_path(
          ckptr.checkpointables_metadata(step).metadata[item])
  }

  def abstract(path, x):
    key = jax.tree_util.keystr(path, simple=True, separator='/')
    if (isinstance(x, jax.ShapeDtypeStruct) and x.sharding is None
        and getattr(saved.get(key), 'sharding', None) is None):
      return np.empty(x.shape, x.dtype)
    return x

  return jax.tree_util.tree_map_with_path(abstract, abstract_tree)
''',
    'v0_pytree_abstract': '''\
def v0_pytree_abstract(ckptr, step, abstract_tree, item='default'):
  """The v1 abstract tree that loads what v0's PyTreeRestore loads."""
  # v0 loads each leaf as the checkpoint recorded it (type, dtype, sharding),
  # in the structure of abstract_tree.
  saved = {
      jax.tree_util.keystr(path, simple=True, separator='/'): leaf
      for path, leaf in jax.tree_util.tree_leaves_with_path(
          ckptr.checkpointables_metadata(step).metadata[item])
  }

  def abstract(path, _):
    return saved[jax.tree_util.keystr(path, simple=True, separator='/')]

  return jax.tree_util.tree_map_with_path(abstract, abstract_tree)
''',
    'v0_standard_restore': '''\
def v0_standard_restore(ckptr, step, abstract_tree):
  """v0's restore(step, args=StandardRestore(abstract_tree)), in v1."""
  return ckptr.load(
      step, v0_standard_abstract(ckptr, step, abstract_tree),
      checkpointable_name='default')
''',
    'v0_pytree_restore': '''\
def v0_pytree_restore(ckptr, step, abstract_tree):
  """v0's restore(step, args=PyTreeRestore(abstract_tree)), in v1."""
  return ckptr.load(
      step, v0_pytree_abstract(ckptr, step, abstract_tree),
      checkpointable_name='default')
''',
    'v0_best_step': '''\
def v0_best_step(ckptr, best_fn, best_mode):
  """v0's best_step(), in v1: the best step by best_fn, else the latest."""
  if best_fn is None:
    return ckptr.latest.step if ckptr.latest else None
  ranked = sorted(
      (c for c in ckptr.checkpoints if c.metrics is not None),
      key=lambda c: best_fn(c.metrics), reverse=best_mode == 'min')
  return ranked[-1].step if ranked else None
''',
}
HELPERS_ANCHOR = TABLE_FILE + '#helpers'

# Code and notes too long for one line of a row.
# v0 returns False for a step it already has (its save policy says no); v1's
# save raises StepAlreadyExistsError for it.
NEW_STEP = 'step not in [c.step for c in ckptr.checkpoints] and '
ASYNC_SAVE = NEW_STEP + 'ckptr.save_checkpointables_async(step, {\'default\': tree}) is not None'
SAVE_WITH = ', metrics=metrics, force=force, custom_metadata=custom_metadata) is not None'
FORCED = '(force or step not in [c.step for c in ckptr.checkpoints]) and '
NOTES = {
    'constructor': 'exact arguments for your options: orbax_compat.v1_source(mngr) or '
                   '`python -m orbax_compat v1-config`',
    'read_only': 'v1 has no read-only mode: v0 says False when read_only',
    'read_only_delete': 'v1 has no read-only mode: v0 skips it when read_only',
    'composite_save': 'items: each Composite entry as a v1 checkpointable (Args types)',
    'composite_restore': 'abstract_items: each Composite entry as a v1 abstract '
                         'checkpointable (Args types)',
    'args_save': 'see Args types for the checkpointable of each args type',
    'args_restore': 'see Args types for the abstract checkpointable of each args type',
    'new_step': 'v0 returns False for a step it has; v1\'s save raises StepAlreadyExistsError',
    'metrics': 'v1 writes metrics even without best_fn; v0 only with it',
    'standard_restore': 'a jax.ShapeDtypeStruct without sharding: the sharding the checkpoint '
                        'recorded, else numpy (v0_standard_abstract, see Helpers)',
    'pytree_restore': 'each leaf as the checkpoint recorded it, in the target\'s structure '
                      '(v0_pytree_abstract, see Helpers)',
}
_C = NOTES['constructor']

MEMBERS = (
    Member('__init__', 'adapted', kind='init', note='options become v1 policies and Context '
           'options; see the options table', forms=(
        F('mngr = ocp.CheckpointManager(directory, options=options, metadata=metadata)',
          'ckptr = ocp_v1.training.Checkpointer(directory, custom_metadata=metadata)', note=_C),
        F('mngr = ocp.CheckpointManager(directory, checkpointers, options=options)',
          'ckptr = ocp_v1.training.Checkpointer(directory)',
          note='legacy checkpointers: save and load items by name (see save/restore); ' + _C),
        F('mngr = ocp.CheckpointManager(directory, options=options, item_names=item_names, '
          'item_handlers=item_handlers)', 'ckptr = ocp_v1.training.Checkpointer(directory)',
          note='items are named in each save/load; handler settings become Context options; '
          + _C),
        F('mngr = ocp.CheckpointManager(directory, options=options, '
          'handler_registry=handler_registry)', 'ckptr = ocp_v1.training.Checkpointer(directory)',
          note='items are named in each save/load; ' + _C),
    )),
    Member('directory', 'direct', kind='property', forms=(
        F('mngr.directory', 'ckptr.directory', mechanical='expression'),
    )),
    Member('all_steps', 'adapted', forms=(
        F('mngr.all_steps()', '[c.step for c in ckptr.checkpoints]', mechanical='expression'),
        F('mngr.all_steps(read=True)', 'ckptr.reload()\n[c.step for c in ckptr.checkpoints]'),
    )),
    Member('latest_step', 'adapted', forms=(
        F('mngr.latest_step()', 'ckptr.latest.step if ckptr.latest else None',
          mechanical='expression'),
    )),
    Member('best_step', 'emulated', note='v1 keeps metrics per checkpoint; the best is computed',
           forms=(
        F('mngr.best_step()', 'v0_best_step(ckptr, best_fn, best_mode)',
          mechanical='expression',
          note='steps without metrics never rank; without best_fn, the latest'),
    )),
    Member('reload', 'direct', forms=(
        F('mngr.reload()', 'ckptr.reload()', mechanical='statement'),
    )),
    Member('reached_preemption', 'unsupported-in-v1', note='v1 saves at preemption through its '
           'save policy (PreemptionCheckpointingPolicy)', forms=(
        F('mngr.reached_preemption(step)',
          'from orbax.checkpoint import utils\nutils.reached_preemption(step)',
          note='JAX\'s preemption sync point, as v0 asks it'),
    )),
    Member('should_save', 'direct', forms=(
        F('mngr.should_save(step)', 'ckptr.should_save(step)', mechanical='expression',
          unless=('read_only',), note=NOTES['read_only']),
    )),
    Member('delete', 'direct', forms=(
        F('mngr.delete(step)', 'ckptr.delete(step)', mechanical='statement',
          unless=('read_only',), needs='v1_delete', note=NOTES['read_only_delete']),
    )),
    Member('save', 'adapted', note='v0 args become checkpointables; a single item is stored '
           'under "default"', forms=(
        F('mngr.save(step, args=ocp.args.StandardSave(tree))', ASYNC_SAVE,
          mechanical='expression', unless=('read_only', 'enable_async_checkpointing'),
          note=NOTES['new_step']),
        F('mngr.save(step, args=ocp.args.StandardSave(tree), metrics=metrics)',
          NEW_STEP + 'ckptr.save_checkpointables_async(step, {\'default\': tree}, '
          'metrics=metrics) is not None', mechanical='expression',
          unless=('read_only', 'enable_async_checkpointing', 'prevent_write_metrics'),
          requires=('best_fn',), note=NOTES['metrics']),
        F('mngr.save(step, args=ocp.args.StandardSave(tree), metrics=metrics, force=force, '
          'custom_metadata=custom_metadata)',
          FORCED + 'ckptr.save_checkpointables_async(step, {\'default\': tree}' + SAVE_WITH,
          note=NOTES['metrics']),
        F('mngr.save(step, args=ocp.args.PyTreeSave(tree))', ASYNC_SAVE,
          mechanical='expression', unless=('read_only', 'enable_async_checkpointing'),
          note=NOTES['new_step']),
        F('mngr.save(step, args=ocp.args.Composite(**args), metrics=metrics, force=force, '
          'custom_metadata=custom_metadata)',
          FORCED + 'ckptr.save_checkpointables_async(step, items' + SAVE_WITH,
          note=NOTES['composite_save']),
        F('mngr.save(step, tree)', ASYNC_SAVE, when='single_item',
          note='legacy items= of a single-item manager'),
        F('mngr.save(step, items)',
          NEW_STEP + 'ckptr.save_checkpointables_async(step, items) is not None',
          when='named_items', note='legacy items= by name'),
        F('mngr.save(step, args=args, metrics=metrics, force=force, '
          'custom_metadata=custom_metadata)',
          FORCED + 'ckptr.save_checkpointables_async(step, {\'default\': tree} if single_item '
          'else items' + SAVE_WITH, note=NOTES['args_save']),
    )),
    Member('restore', 'adapted', note='v1 returns the tree, or a dict of items where v0 returns '
           'an args.Composite', forms=(
        F('mngr.restore(step, args=ocp.args.StandardRestore(abstract_tree))',
          'v0_standard_restore(ckptr, step, abstract_tree)', mechanical='expression',
          note=NOTES['standard_restore']),
        F('mngr.restore(step, args=ocp.args.PyTreeRestore(abstract_tree))',
          'v0_pytree_restore(ckptr, step, abstract_tree)', mechanical='expression',
          note=NOTES['pytree_restore']),
        F('mngr.restore(step)', 'ckptr.load(step, checkpointable_name=\'default\')',
          when='single_item', note='a single-item manager'),
        F('mngr.restore(step)', 'ckptr.load_checkpointables(step)', when='named_items',
          note='named items: a dict, v0 an args.Composite'),
        F('mngr.restore(step, args=ocp.args.Composite(**args))',
          'ckptr.load_checkpointables(step, abstract_items)', note=NOTES['composite_restore']),
        F('mngr.restore(step, abstract_tree)', 'v0_pytree_restore(ckptr, step, abstract_tree)',
          when='single_item', note='legacy items= of a single-item manager (a PyTree handler)'),
        F('mngr.restore(step, args=args)',
          'ckptr.load(step, abstract_tree, checkpointable_name=\'default\') if single_item '
          'else ckptr.load_checkpointables(step, abstract_items)', note=NOTES['args_restore']),
        # Last: its placeholder also matches a call without directory=.
        F('mngr.restore(step, directory=other_directory)',
          'ocp_v1.load_checkpointables(f\'{other_directory}/{step}\')',
          note='another root: v1\'s free load of the step directory'),
    )),
    Member('item_metadata', 'adapted', note='v1 metadata types', forms=(
        F('mngr.item_metadata(step)', 'ckptr.checkpointables_metadata(step).metadata[\'default\']',
          when='single_item'),
        F('mngr.item_metadata(step)', 'ckptr.checkpointables_metadata(step).metadata',
          when='named_items', note='named items: a dict by item name'),
    )),
    Member('metrics', 'adapted', forms=(
        F('mngr.metrics(step)',
          'next((c.metrics for c in ckptr.checkpoints if c.step == step), None)',
          mechanical='expression'),
    )),
    Member('metadata', 'adapted', note='v1 metadata types', forms=(
        F('mngr.metadata()', 'ckptr.root_metadata()',
          note='custom_metadata as v0\'s RootMetadata'),
        F('mngr.metadata(step)', 'ckptr.checkpointables_metadata(step)',
          note='metrics and custom_metadata as v0\'s StepMetadata'),
    )),
    Member('wait_until_finished', 'adapted', forms=(
        F('mngr.wait_until_finished()', 'ckptr.wait()', mechanical='statement'),
    )),
    Member('is_saving_in_progress', 'direct', forms=(
        F('mngr.is_saving_in_progress()', 'ckptr.is_saving_in_progress()',
          mechanical='expression'),
    )),
    Member('check_for_errors', 'emulated', forms=(
        F('mngr.check_for_errors()', 'ckptr.wait()', note='v1 has no non-blocking check: '
          'wait() raises the error of the save in flight, after it ends'),
    )),
    Member('close', 'direct', forms=(
        F('mngr.close()', 'ckptr.close()', mechanical='statement'),
    )),
    Member('__contextmanager__', 'direct', kind='protocol', forms=(
        F('with mngr:\n  pass', 'with ckptr:\n  pass'),
    )),
)

JSON_CONTEXT = (
    'registry = ocp_v1.handlers.local_registry()\n'
    'registry.add(ocp_v1.handlers.JsonHandler, checkpointable_name=name)\n'
    'context = ocp_v1.Context()\n'
    'context.checkpointables.registry = registry\n'
    'context'
)
RESTORE_ARGS_ABSTRACT = (
    'jax.tree.map(lambda ra, x: jax.ShapeDtypeStruct(x.shape, ra.dtype or x.dtype, '
    'sharding=ra.sharding) if getattr(ra, \'sharding\', None) else np.empty(x.shape, '
    'ra.dtype or x.dtype), restore_args, abstract_tree)'
)

# What each v0 args type becomes in v1, under its item's name.
ARGS_TYPES = (
    ArgsType('ocp.args.StandardSave(tree)', 'tree'),
    ArgsType('ocp.args.StandardRestore(abstract_tree)',
             'v0_standard_abstract(ckptr, step, abstract_tree, name)',
             note=NOTES['standard_restore']),
    ArgsType('ocp.args.PyTreeSave(tree)', 'tree'),
    ArgsType('ocp.args.PyTreeRestore(abstract_tree)',
             'v0_pytree_abstract(ckptr, step, abstract_tree, name)',
             note=NOTES['pytree_restore']),
    ArgsType('ocp.args.PyTreeRestore(abstract_tree, restore_args=restore_args)',
             RESTORE_ARGS_ABSTRACT, note='each RestoreArgs becomes the abstract leaf it asks for'),
    ArgsType('ocp.args.JsonSave(doc)', 'doc', context=JSON_CONTEXT,
             note='v1 saves a dict as a pytree unless the name is bound to its JsonHandler; v1 '
                  'writes data.json, which v0 cannot read'),
    ArgsType('ocp.args.JsonRestore()', 'None',
             note='v1 reads v0\'s JSON items (their `metadata` file)'),
    ArgsType('ocp.args.ProtoSave(message)', 'message'),
    ArgsType('ocp.args.ProtoRestore(message_class)', 'message_class'),
    ArgsType('ocp.args.ArraySave(array)', '{\'array\': array}',
             note='v1 has no Array handler: save the array in a pytree (another layout); v1 '
                  'reads v0 Array items only through orbax_compat'),
)

# The names forms' code may use, and what each stands for.
PLACEHOLDERS = {
    'ocp': 'v0\'s module: `import orbax.checkpoint as ocp` (`import orbax_compat as ocp` while '
           'migrating)',
    'mngr': 'the v0 CheckpointManager (orbax_compat\'s, while migrating)',
    'ckptr': 'the v1 training.Checkpointer: `mngr.v1_checkpointer` while migrating, your own '
             'once the constructor is v1',
    'directory': 'the root directory',
    'options': 'the v0 CheckpointManagerOptions',
    'metadata': 'the root metadata (a JSON dict)',
    'checkpointers': 'v0 Checkpointer(s) (legacy constructor)',
    'item_names': 'v0 item names',
    'item_handlers': 'v0 CheckpointHandlers, by item name',
    'handler_registry': 'a v0 CheckpointHandlerRegistry',
    'step': 'a step number',
    'tree': 'the pytree a StandardSave/PyTreeSave saves',
    'abstract_tree': 'the restore target of a StandardRestore/PyTreeRestore (arrays, '
                     'jax.ShapeDtypeStructs or a concrete tree)',
    'restore_args': 'PyTreeRestore restore_args (a tree of RestoreArgs)',
    'items': '{item name: v1 checkpointable} of a Composite (see Args types)',
    'abstract_items': '{item name: v1 abstract checkpointable, or None} of a Composite (see '
                      'Args types)',
    'args': 'v0 CheckpointArgs',
    'metrics': 'the step\'s metrics (a JSON dict)',
    'force': 'save even where the save policy says no',
    'custom_metadata': 'the step\'s custom metadata (a JSON dict)',
    'best_fn': 'options.best_fn (None: no best tracking)',
    'best_mode': 'options.best_mode (\'min\' or \'max\')',
    'other_directory': 'the root given as restore(directory=...)',
    'single_item': 'True for a manager of one unnamed item (saved under "default"), False for '
                   'named items',
    # Only the args types use these.
    'doc': 'a JSON document (JsonSave/JsonRestore)',
    'message': 'a protobuf message (ProtoSave)',
    'message_class': 'a protobuf message class (ProtoRestore)',
    'array': 'an array (ArraySave)',
    'name': 'an item name',
    'save_args': 'PyTreeSave save_args (a tree of SaveArgs)',
}
ARGS_ONLY_PLACEHOLDERS = ('doc', 'message', 'message_class', 'array', 'name', 'save_args')
FREE_NAMES = ('ocp_v1', 'jax', 'np')  # Modules v1 code may use besides placeholders.
# Names v1 code may use besides placeholders and builtins.
V1_NAMES = frozenset(FREE_NAMES) | frozenset(HELPERS)

"""dunning steps are known by name, not by position

An open case recorded the *position* of its last step in the policy's list (`last_step`), and of
the step whose notice waits for its charges (`awaiting_step`). An operator who removed a step
while cases were past it made the sweep read a position the list no longer had (IndexError), or,
worse, the wrong step. Now:

- `dunning_cases.last_step_name` and `last_step_day`: the name of the last step taken and its
  day in the policy it was taken under (NULL: none yet); `awaiting_step_name` replaces
  `awaiting_step`. `last_step` and `awaiting_step` go. Where a case stands in the policy in force
  is decided at each sweep (`renewly.dunning.rules.schedule.place`).
- They are filled from the step each case recorded when it took it (`dunning_steps`: the name
  and day of the policy in force then, the exact record). A position with no recorded step (none
  should exist: the sweep writes both in one transaction) takes the name and day of that
  position in the policy known when this migration was written, the default policy of R8
  (`DEFAULT_STEPS` below); a position beyond it stays unnamed, as before any step.
- `dunning_steps`: a case takes each named step once (`uq_dunning_steps_case_name` replaces
  `uq_dunning_steps_case_step`, a position that a new policy may give to another step). Two
  steps of one case recorded with the same name (a policy that reused a name at another
  position) keep their history: the later ones are renamed `NAME@POSITION`.

- `payment_retries.reason` of a dunning step names the step (`dunning:CASE:NAME`, was
  `dunning:CASE:POSITION`): 100 characters (a name has at most 64, the policy file says so).
  SQLite does not hold a text to its declared length: nothing to change there.
- `dunning_schedule`: the schedule the open cases' next steps were computed under (a digest of
  the policy's steps and minimum warning, with the version that had it). Empty after the
  upgrade: the first sweep makes every open case scheduled later due at once, once, and records
  the schedule in force (the cases were scheduled under a policy nobody recorded).

Downgrading gives each case back the position of its named step in the steps it recorded (else
in the default policy; else -1, before the first step); it fails if two steps of one case
recorded the same position (a policy edited since this migration).

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# The steps of the default policy when this migration was written (policies/default.toml, R8):
# only for a position no recorded step names.
DEFAULT_STEPS = (("payment_failed_1", 0), ("payment_failed_2", 2), ("payment_failed_3", 4),
                 ("suspension_warning", 21), ("account_cancelled", 29))


def _default(position: str, what: int) -> str:
    """SQL: the default policy's name (what=0) or day (what=1) at `position`."""
    cases = " ".join(f"WHEN {index} THEN " + (f"'{step[0]}'" if what == 0 else str(step[1]))
                     for index, step in enumerate(DEFAULT_STEPS))
    return f"CASE {position} {cases} END"


def _default_position(name: str) -> str:
    """SQL: the position of the step `name` in the default policy (NULL: not one of its names)."""
    return f"CASE {name} " + " ".join(f"WHEN '{step}' THEN {index}" for index, (step, _) in enumerate(DEFAULT_STEPS)) \
        + " END"


def _recorded(column: str, position: str) -> str:
    """SQL: the name or day a case recorded with the step it took at `position`."""
    return f"(SELECT s.{column} FROM dunning_steps AS s WHERE s.case_id = dunning_cases.id AND s.step = {position})"


def upgrade() -> None:
    op.create_table(
        'dunning_schedule',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('schedule_key', sa.String(length=64), nullable=False),
        sa.Column('policy_version', sa.String(length=64), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_dunning_schedule_single_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_schedule')))
    # Names made unique per case first (the later of two same-named steps keeps its position).
    op.execute("UPDATE dunning_steps SET name = substr(name, 1, 50) || '@' || step WHERE EXISTS ("
               "SELECT 1 FROM dunning_steps AS earlier WHERE earlier.case_id = dunning_steps.case_id "
               "AND earlier.name = dunning_steps.name AND earlier.step < dunning_steps.step)")
    with op.batch_alter_table('dunning_steps', recreate='auto') as batch:
        batch.drop_constraint('uq_dunning_steps_case_step', type_='unique')
        batch.create_unique_constraint('uq_dunning_steps_case_name', ['case_id', 'name'])

    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('payment_retries', 'reason', type_=sa.String(length=100), existing_nullable=False)
    op.add_column('dunning_cases', sa.Column('last_step_name', sa.String(length=64), nullable=True))
    op.add_column('dunning_cases', sa.Column('last_step_day', sa.Integer(), nullable=True))
    op.add_column('dunning_cases', sa.Column('awaiting_step_name', sa.String(length=64), nullable=True))
    op.execute(f"UPDATE dunning_cases SET "
               f"last_step_name = COALESCE({_recorded('name', 'dunning_cases.last_step')}, "
               f"{_default('dunning_cases.last_step', 0)}), "
               f"last_step_day = COALESCE({_recorded('day', 'dunning_cases.last_step')}, "
               f"{_default('dunning_cases.last_step', 1)}) "
               f"WHERE last_step >= 0")
    op.execute("UPDATE dunning_cases SET last_step_day = NULL WHERE last_step_name IS NULL")
    op.execute(f"UPDATE dunning_cases SET awaiting_step_name = COALESCE("
               f"{_recorded('name', 'dunning_cases.awaiting_step')}, "
               f"{_default('dunning_cases.awaiting_step', 0)}) WHERE awaiting_step IS NOT NULL")
    # Neither column is in an index or a constraint: SQLite (3.35 and later) drops them in place.
    op.execute("ALTER TABLE dunning_cases DROP COLUMN last_step")
    op.execute("ALTER TABLE dunning_cases DROP COLUMN awaiting_step")


def downgrade() -> None:
    op.drop_table('dunning_schedule')
    if op.get_bind().dialect.name == 'postgresql':  # fails if a longer reason was written since
        op.alter_column('payment_retries', 'reason', type_=sa.String(length=64), existing_nullable=False)
    op.execute("ALTER TABLE dunning_cases ADD COLUMN last_step INTEGER NOT NULL DEFAULT -1")
    op.execute("ALTER TABLE dunning_cases ADD COLUMN awaiting_step INTEGER")
    for position, name in (("last_step", "last_step_name"), ("awaiting_step", "awaiting_step_name")):
        op.execute(f"UPDATE dunning_cases SET {position} = COALESCE((SELECT s.step FROM dunning_steps AS s "
                   f"WHERE s.case_id = dunning_cases.id AND s.name = dunning_cases.{name}), "
                   f"{_default_position(f'dunning_cases.{name}')}"
                   f"{', -1' if position == 'last_step' else ''}) WHERE {name} IS NOT NULL")
    for column in ('awaiting_step_name', 'last_step_day', 'last_step_name'):
        op.execute(f"ALTER TABLE dunning_cases DROP COLUMN {column}")
    with op.batch_alter_table('dunning_steps', recreate='auto') as batch:
        batch.drop_constraint('uq_dunning_steps_case_name', type_='unique')
        batch.create_unique_constraint('uq_dunning_steps_case_step', ['case_id', 'step'])

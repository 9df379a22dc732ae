"""The --selective checklists of `up` and `down`: checkboxes on a terminal (questionary), each
component with the memory it requests and how it depends on the others.

`up --selective` adds what the chosen components need and says so; `down --selective` shows the
plan (what goes, what stays) and asks before deleting anything (datamesh/teardown.py). Without a
terminal both are refused by their callers, naming --only or --components.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Callable

from datamesh import budget
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.role import Role


def memory(role: Role, inventory: Inventory) -> Decimal:
    """What the component's pods request, in bytes (what the budget preflight adds up)."""
    return budget.requested(role.render(inventory.vars))["memory"]


def describe(role: Role, roles: list[Role], inventory: Inventory, removing: bool) -> str:
    """One checklist line: name, memory, and what it needs (for up) or what needs it (for down)."""
    mib = memory(role, inventory) / Decimal(2**20)
    if removing:
        related = [r.name for r in roles if role.name in r.depends_on]
        relation = f"needed by {', '.join(related)}" if related else "nothing needs it"
    else:
        relation = f"needs {', '.join(role.depends_on)}" if role.depends_on else "needs nothing"
    return f"{role.name:<16} {mib:>6.0f} MiB  {relation}"


def needed(roles: list[Role], chosen: list[str]) -> list[str]:
    """The chosen components and everything they need, in playbook order."""
    by_name = {r.name: r for r in roles}
    wanted, todo = set(), list(chosen)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += by_name[name].depends_on
    return [r.name for r in roles if r.name in wanted]


def ask(roles: list[Role], inventory: Inventory, removing: bool) -> list[str]:
    """The components ticked on the terminal; [] when none, or on Ctrl-C."""
    import questionary

    verb = "remove" if removing else "bring up"
    choices = [questionary.Choice(describe(r, roles, inventory, removing), value=r.name) for r in roles]
    answer = questionary.checkbox(f"Components to {verb} (space ticks, enter confirms):", choices=choices).ask()
    return list(answer or [])


def confirm(question: str) -> bool:
    """Yes or no on the terminal; no is the default, and Ctrl-C says no."""
    import questionary

    return bool(questionary.confirm(question, default=False).ask())


def for_up(roles: list[Role], inventory: Inventory, say: Callable[[str], None]) -> list[str]:
    """`up --selective`: the ticked components and, said aloud, what they need; [] when none was ticked."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DatameshError("--selective asks on a terminal and there is none: name the components with --only a,b "
                            "(with what they need).")
    chosen = ask(roles, inventory, removing=False)
    for name in chosen:
        extra = [n for n in needed(roles, [name]) if n not in chosen]
        if extra:
            say(f"{name} needs {', '.join(extra)}: added.")
    return needed(roles, chosen)

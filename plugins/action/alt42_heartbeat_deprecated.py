"""Warn, on the controller, about each deprecated variable a play still sets.

``ansible.builtin.debug`` prints a message as output, not as a warning: an admin who
reads only the warnings at the end of a run would miss it. This action prints each line
as Ansible's own ``[WARNING]`` (as every ansible-core since 2.14 does, through
``Display.warning``) and changes nothing. It reads only the variables' names: no value,
so no secret, is ever printed.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    """``alt42_heartbeat_deprecated: {names: {variable: "section.key"}}``."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("names",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        names = self._task.args.get("names") or {}
        for variable, where in sorted(names.items()):
            section, _, key = str(where).partition(".")
            display.warning(
                f"{variable} is deprecated and will be removed in a later release: set"
                f" alt42_heartbeat_settings: {{{section}: {{{key}: ...}}}} instead"
                " (CHANGELOG: Upgrading)"
            )
        result.update(changed=False, deprecated=sorted(names))
        return result

"""testinfra backend "nsenter://PID": runs each command inside the booted container whose init is PID,
the way the harness's Ansible connection does (nsenter --target PID --all)."""
from testinfra.backend import base


class NsenterBackend(base.BaseBackend):
    NAME = "nsenter"

    def __init__(self, hostname, *args, **kwargs):
        self.leader = hostname
        super().__init__(hostname, *args, **kwargs)

    def run(self, command, *args, **kwargs):
        cmd = self.get_command(command, *args)
        out = self.run_local("nsenter --target %s --all -- /bin/sh -c %s", self.leader, cmd)
        out.command = self.encode(cmd)
        return out

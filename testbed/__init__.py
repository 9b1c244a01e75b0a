"""A real local testbed: Alluxio 2.9.6 (master, worker, REST proxy) from Maven Central jars
and N OpenSSH ``sshd`` nodes on loopback. Used by the tests, the demo and CI.

State lives under ``.testbed/`` (git-ignored): jars, keys, configs, pid files, logs, work dirs.
"""

// Package harness boots real OpenSSH test nodes on this machine for drover's
// end-to-end and scale tests (docs/DESIGN.md, "Testing against real machines").
//
// Two kinds of node:
//
//   - systemd nodes (BootSystemd): a Debian bookworm image, built once with
//     debootstrap and cached under /var/cache/drover-test (BuildImage), booted
//     per node with systemd-nspawn over a private overlay upper dir. Each node
//     runs systemd as its PID 1 and sshd on 127.0.2.N:22, shares the host's
//     network namespace and lives in its own cgroup, so writing cgroup.kill is
//     a power cut (Kill) and Start boots it again with its disk kept.
//   - light nodes (BootLight): one `sshd -D` per node on 127.0.x.y:22 (x from
//     10), in a private mount namespace where a per-node directory is bind-
//     mounted on the install root (/opt/drover by default) and an empty one on
//     the login user's home (so the host's dotfiles do not run on every ssh
//     command). Otherwise they are the host: same users, same /etc, no systemd
//     of their own. Hundreds fit on one machine.
//
// Everything runs as root and only on 127.0.0.0/8. State lives in
// /run/drover-test/<cluster>: keys, known_hosts, node dirs and one file per
// process started (pids/<pid>). Every Boot first reaps what a previous run left
// behind when its owner died (killed `go test`, Ctrl-C): it kills recorded
// processes whose /proc/PID/cmdline still names the dead cluster's dir, kills
// and removes the cluster's cgroups, deletes its nftables table (one per
// cluster, inet drover_test_<cluster>) and removes its state. Node processes
// also get a parent-death signal, so a killed test binary takes its nodes
// down at once in the common case. `drover-nodes down` runs the same reaping
// by hand.
//
// The harness installs nothing: a missing tool is an error that names it and
// the Debian package providing it (`make test` installs them). Tests call
// RequireRoot first so that a non-root run skips rather than fails. A cold
// image build takes minutes (2 on an idle 2-core machine, 10+ on a busy one);
// run `drover-nodes image` and `drover-nodes artifacts` before the tests to keep
// it out of test timeouts.
package harness

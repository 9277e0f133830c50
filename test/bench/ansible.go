package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// ansible runs Debian's ansible-playbook against a set of harness nodes,
// configured as Ansible's documentation recommends for speed: forks at
// least the node count, pipelining, ControlPersist with a ControlPath
// dir, no fact gathering; host keys checked against the harness's
// known_hosts.
type ansible struct {
	dir   string // ansible.cfg, hosts.ini, logs
	cp    string // ControlPath dir
	env   []string
	books string // the playbooks dir
	attr  *syscall.SysProcAttr
}

func newAnsible(dir, cp, books string, c *harness.Cluster, nodes []harness.Node, forks int, attr *syscall.SysProcAttr) (*ansible, error) {
	a := &ansible{dir: dir, cp: cp, books: books, attr: attr}
	for _, d := range []string{dir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var inv strings.Builder
	for _, group := range []string{"master", "agent"} {
		fmt.Fprintf(&inv, "[%s]\n", group)
		for i, n := range nodes {
			if roles(i) == group {
				fmt.Fprintf(&inv, "%s ansible_host=%s ansible_port=%d\n", n.Name, n.Address, n.Port)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.ini"), []byte(inv.String()), 0o644); err != nil {
		return nil, err
	}
	sshArgs := append(peerSSHOptions(c), "-o", "ControlMaster=auto", "-o", "ControlPersist=300s")
	cfg := fmt.Sprintf(`# Written by test/bench: Ansible tuned for speed (docs: "Speeding up" / pipelining / forks).
[defaults]
inventory = %s
forks = %d
gathering = explicit
host_key_checking = True
interpreter_python = /usr/bin/python3
remote_user = %s
private_key_file = %s
local_tmp = %s
retry_files_enabled = False
deprecation_warnings = False
timeout = %d

[ssh_connection]
pipelining = True
ssh_args = %s
control_path_dir = %s
control_path = %%(directory)s/%%%%C
`, filepath.Join(dir, "hosts.ini"), forks, c.User, c.IdentityFile, filepath.Join(dir, "tmp"), int(connectTimeout.Seconds()), strings.Join(sshArgs, " "), a.cp)
	cfgPath := filepath.Join(dir, "ansible.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	a.env = append(os.Environ(), "ANSIBLE_CONFIG="+cfgPath, "ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0")
	return a, nil
}

// play runs one playbook with extra vars and returns its wall time (the
// whole ansible-playbook process, as a user waits for it). Output goes to
// a log in the ansible dir; a failure quotes its end.
func (a *ansible) play(ctx context.Context, playbook string, vars map[string]any) (time.Duration, error) {
	b, err := json.Marshal(vars)
	if err != nil {
		return 0, err
	}
	varsFile := filepath.Join(a.dir, "vars.json")
	if err := os.WriteFile(varsFile, b, 0o644); err != nil {
		return 0, err
	}
	logPath := filepath.Join(a.dir, "last-run.log")
	log, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	cmd := peerCommand(ctx, a.attr, "ansible-playbook", "-e", "@"+varsFile, filepath.Join(a.books, playbook))
	cmd.Env = a.env
	cmd.Dir = a.books
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("ansible-playbook %s: %w\n%s", playbook, err, fileTail(logPath, 1500))
	}
	return d, nil
}

// coldStart closes the ControlPersist masters, so the next run connects anew.
func (a *ansible) coldStart() error { return closeMasters(a.cp) }

// close leaves no master running.
func (a *ansible) close() error { return closeMasters(a.cp) }

package inventory

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/internal/sshtest"
)

const sshdPath = "/usr/sbin/sshd"

// sshdNode is a real OpenSSH sshd on a loopback port, like a light node.
type sshdNode struct {
	t       *testing.T
	config  string
	port    int
	cmd     *exec.Cmd
	stderr  *syncBuffer
	hostKey ssh.PublicKey
}

func startSSHD(t *testing.T, authorized ssh.PublicKey) *sshdNode {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("OpenSSH integration test needs root (sshd logs users in)")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("OpenSSH integration test needs %s (apt-get install openssh-server): %v", sshdPath, err)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "drover-test-host")
	if err != nil {
		t.Fatal(err)
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(hostKeyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	authPath := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authPath, ssh.MarshalAuthorizedKey(authorized), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &sshdNode{t: t, port: closedPort(t), hostKey: signer.PublicKey(), config: filepath.Join(dir, "sshd_config")}
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 100
LogLevel INFO
`, n.port, hostKeyPath, authPath)
	if err := os.WriteFile(n.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *sshdNode) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// start runs sshd. Like a light node, it runs in a private mount
// namespace where root's ~/.bashrc is empty: Debian's bash sources it for
// every ssh command, and a developer's (pyenv, cargo...) can take seconds.
func (n *sshdNode) start() {
	n.t.Helper()
	n.stderr = &syncBuffer{}
	n.cmd = exec.Command(sshdPath, "-D", "-e", "-f", n.config)
	if unshare, err := exec.LookPath("unshare"); err == nil {
		empty := filepath.Join(filepath.Dir(n.config), "empty_bashrc")
		os.WriteFile(empty, nil, 0o644)
		n.cmd = exec.Command(unshare, "--mount", "--propagation", "private", "/bin/sh", "-c",
			`[ ! -e /root/.bashrc ] || mount --bind "$1" /root/.bashrc || exit 1; exec "$2" -D -e -f "$3"`,
			"sh", empty, sshdPath, n.config)
	}
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			n.kill()
			n.t.Fatalf("sshd did not start listening on %s: %v\n%s", n.addr(), err, n.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs sshd and every process it started (per-connection sshd
// children and the commands they run), like a node losing power.
func (n *sshdNode) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	pids := descendants(n.cmd.Process.Pid)
	n.cmd.Process.Kill()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	n.cmd.Wait()
	n.cmd = nil
}

// descendants lists the processes below pid, found through /proc.
func descendants(root int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOpenSSHIntegration(t *testing.T) {
	noAgent(t)
	dir := t.TempDir()
	key := sshtest.WriteClientKey(t, dir, "id_ed25519", "")
	node := startSSHD(t, key.Signer.PublicKey())
	kh := filepath.Join(dir, "known_hosts")
	sshtest.AppendKnownHosts(t, kh, sshtest.KnownHostsLine(node.addr(), node.hostKey))
	p := newPool(t, Config{
		IdentityFiles:  []string{key.Path},
		KnownHostsFile: kh,
		ConnectTimeout: 3 * time.Second,
		KeepAlive:      time.Second,
	})
	tg := Target{Name: "light1", Address: "127.0.0.1", Port: node.port, User: "root"}
	logs := func() string { return node.stderr.String() }

	res, err := p.Run(ctxT(t), tg, `id -un; cat; printf '%s\n' "$0"; exit 3`, strings.NewReader("in"))
	if err != nil {
		t.Fatalf("run: %v\nsshd: %s", err, logs())
	}
	if string(res.Stdout) != "root\nin"+"sh\n" || res.ExitCode != 3 {
		t.Errorf("got %q exit %d", res.Stdout, res.ExitCode)
	}

	t.Run("cancel kills the remote command", func(t *testing.T) {
		pidFile := filepath.Join(dir, "sleep.pid")
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		_, err := p.Run(ctx, tg, "sleep 30 & echo $! > "+Quote(pidFile)+"; wait", nil)
		wantErr(t, err, ErrTimeout, "timeout")
		data, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		eventually(t, "sshd to kill the remote sleep", func() bool { return !processRunning(pid) })
		mustRun(t, p, tg, "true")
	})

	t.Run("sshd killed mid-run", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() {
			_, err := p.Run(context.Background(), tg, "echo started > "+Quote(filepath.Join(dir, "started"))+"; sleep 20", nil)
			errc <- err
		}()
		eventually(t, "the command to start", func() bool {
			_, err := os.Stat(filepath.Join(dir, "started"))
			return err == nil
		})
		node.kill()
		select {
		case err := <-errc:
			if r := Reason(err); r != "unreachable" && r != "timeout" {
				t.Fatalf("Reason(%v) = %q, want unreachable or timeout", err, r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run still running 10s after sshd was killed")
		}
		_, err := p.Run(ctxT(t), tg, "true", nil)
		wantErr(t, err, ErrUnreachable, "unreachable")

		node.start()
		if res := mustRun(t, p, tg, "echo again"); string(res.Stdout) != "again\n" {
			t.Errorf("after restart: %q", res.Stdout)
		}
	})
}

package sshtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, f Fixture) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", f.Server.Addr(), &ssh.ClientConfig{
		User:            "tester",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(f.Key.Signer)},
		HostKeyCallback: ssh.FixedHostKey(f.Server.HostKey()),
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestExecPipesAndExitStatus(t *testing.T) {
	f := Setup(t, Options{Env: []string{"GREETING=hi"}})
	c := dial(t, f)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	sess.Stdin = strings.NewReader("from stdin")
	sess.Stdout, sess.Stderr = &out, &errOut
	err = sess.Run(`cat; echo " $GREETING $USER $(pwd)"; echo oops >&2; exit 3`)
	var exitErr *ssh.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 3 {
		t.Fatalf("want exit 3, got %v", err)
	}
	if want := "from stdin hi tester " + f.Server.Dir() + "\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	if errOut.String() != "oops\n" {
		t.Errorf("stderr %q", errOut.String())
	}
	if st := f.Server.Stats(); st.Sessions != 1 || st.MaxInFlight != 1 || st.InFlight != 0 || st.Accepted != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSignalKillsProcessGroup(t *testing.T) {
	f := Setup(t, Options{})
	c := dial(t, f)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("sleep 30 & wait"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.Server.Stats().InFlight == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := sess.Signal(ssh.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = sess.Wait()
	var exitErr *ssh.ExitError
	if !errors.As(err, &exitErr) || exitErr.Signal() != "KILL" {
		t.Fatalf("want killed by KILL, got %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("kill took %s", time.Since(start))
	}
}

func TestDirectTCPIPAndKeepalive(t *testing.T) {
	f := Setup(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			io.Copy(conn, conn)
			conn.Close()
		}
	}()
	c := dial(t, f)
	nc, err := c.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	nc.Close()
	if _, err := c.Dial("tcp", "192.0.2.1:80"); err == nil {
		t.Error("forwarding to a non-loopback address was allowed")
	}
	ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || ok {
		t.Errorf("keepalive: ok=%v err=%v, want an OpenSSH-like failure reply", ok, err)
	}
	if st := f.Server.Stats(); st.DirectTCPIP != 1 || st.Keepalives != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestDropConnectionsKeepsListening(t *testing.T) {
	f := Setup(t, Options{})
	c := dial(t, f)
	// The client's handshake can finish before the server's side counts
	// it; drop only once the server has, or the count below may miss it.
	for deadline := time.Now().Add(5 * time.Second); f.Server.Stats().Authenticated != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("server never counted the first handshake: %+v", f.Server.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	f.Server.DropConnections()
	if err := c.Wait(); err == nil {
		t.Log("connection ended cleanly")
	}
	c2 := dial(t, f)
	if _, err := c2.NewSession(); err != nil {
		t.Fatalf("after drop: %v", err)
	}
	if st := f.Server.Stats(); st.Accepted != 2 || st.Authenticated != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestHandshakeDelayHoldsUntilClose(t *testing.T) {
	f := Setup(t, Options{HandshakeDelay: time.Hour})
	conn, err := net.Dial("tcp", f.Server.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 1)); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server spoke during the delay: %v", err)
	}
	f.Server.Close()
}

func TestUnauthorizedKeyRefused(t *testing.T) {
	f := Setup(t, Options{KeyboardInteractive: true})
	other := NewSigner(t)
	asked := 0
	_, err := ssh.Dial("tcp", f.Server.Addr(), &ssh.ClientConfig{
		User: "tester",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(other), ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			asked = len(qs)
			return make([]string, len(qs)), nil
		})},
		HostKeyCallback: ssh.FixedHostKey(f.Server.HostKey()),
	})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("want auth failure, got %v", err)
	}
	if asked != 1 {
		t.Errorf("keyboard-interactive asked %d questions, want 1", asked)
	}
}

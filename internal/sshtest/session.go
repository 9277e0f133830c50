package sshtest

import (
	"errors"
	"io"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// signals maps SSH signal names (RFC 4254 §6.10) to Unix signals.
var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE,
	"HUP": syscall.SIGHUP, "ILL": syscall.SIGILL, "INT": syscall.SIGINT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return name
		}
	}
	return "KILL"
}

// killGroup signals a command's whole process group, as OpenSSH's sshd
// does (killpg) for a "signal" channel request.
func killGroup(pgid int, name string) {
	if sig, ok := signals[name]; ok {
		syscall.Kill(-pgid, sig)
	}
}

// session serves one "session" channel: one exec request, its signals,
// and its exit status.
func (s *Server) session(nc ssh.NewChannel, user string) {
	defer s.wg.Done()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	var (
		mu      sync.Mutex
		pgid    int
		done    chan struct{}
		started bool
		hung    bool // a HangExec session, counted in InFlight until closed
	)
	for req := range reqs {
		switch req.Type {
		case "exec":
			var payload struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &payload) != nil {
				req.Reply(false, nil)
				continue
			}
			if s.opts.HangExec {
				started = true
				s.sessions.Add(1)
				s.inFlight.Add(1)
				hung = true
				req.Reply(true, nil)
				continue
			}
			cmd, err := s.start(ch, payload.Command, user)
			if err != nil {
				req.Reply(false, nil)
				continue
			}
			started = true
			mu.Lock()
			pgid = cmd.Process.Pid
			mu.Unlock()
			req.Reply(true, nil)
			done = make(chan struct{})
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer close(done)
				s.finish(ch, cmd)
			}()
		case "signal":
			var payload struct{ Signal string }
			if !s.opts.IgnoreSignals && ssh.Unmarshal(req.Payload, &payload) == nil {
				mu.Lock()
				if pgid != 0 {
					killGroup(pgid, payload.Signal)
				}
				mu.Unlock()
			}
			if req.WantReply {
				req.Reply(!s.opts.IgnoreSignals, nil)
			}
		case "env":
			if req.WantReply {
				req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	if hung {
		s.inFlight.Add(-1) // the client closed the hung session
	}
	// The client closed the channel (or the connection died). Like sshd
	// without a pty, leave the command alone; wait for it to end so the
	// channel is torn down in order.
	if done != nil {
		<-done
	}
}

// start runs command with /bin/sh -c in its own process group.
func (s *Server) start(ch ssh.Channel, command, user string) (*exec.Cmd, error) {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = s.opts.Dir
	cmd.Env = s.baseEnv(user)
	cmd.Stdout = countingWriter{ch, &s.stdoutBytes}
	cmd.Stderr = ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("sshtest: server closed")
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.procs[cmd.Process.Pid] = struct{}{}
	s.mu.Unlock()

	s.sessions.Add(1)
	n := s.inFlight.Add(1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	return cmd, nil
}

// finish waits for the command and reports how it ended, then closes the
// channel, which also ends the stdin copy.
func (s *Server) finish(ch ssh.Channel, cmd *exec.Cmd) {
	err := cmd.Wait()
	s.inFlight.Add(-1)
	s.mu.Lock()
	delete(s.procs, cmd.Process.Pid)
	s.mu.Unlock()

	var exitErr *exec.ExitError
	switch {
	case err == nil:
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
	case errors.As(err, &exitErr):
		ws, _ := exitErr.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}{Signal: signalName(ws.Signal())}))
		} else {
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(ws.ExitStatus())}))
		}
	default:
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{255}))
	}
	ch.CloseWrite()
	ch.Close()
}

// countingWriter counts what reaches w: a test can wait until output was
// sent before it cuts the connection.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// Package sshtest is an in-process SSH server for tests. It runs "exec"
// requests with /bin/sh in a directory, forwards direct-tcpip channels to
// loopback addresses (so it also serves as a bastion), answers
// keepalive@openssh.com, and has knobs to simulate dead links and stalled
// handshakes. It never listens or dials outside 127.0.0.0/8.
package sshtest

import (
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Options configure a Server. The zero value is usable: a fresh ed25519
// host key, a temp dir, and no authorized keys (every login is refused).
type Options struct {
	// Addr to listen on; default 127.0.0.1:0. Reusing a closed server's
	// address restarts "the same node".
	Addr string
	// Dir is the working directory and HOME of commands (default: a temp dir).
	Dir string
	// Env is appended to the commands' environment (e.g. "PATH=/fake:/usr/bin:/bin").
	Env []string
	// AuthorizedKeys may log in, under any user name.
	AuthorizedKeys []ssh.PublicKey
	// HostKeys replace the default single ed25519 host key.
	HostKeys []ssh.Signer
	// KeyboardInteractive offers keyboard-interactive auth and refuses it.
	KeyboardInteractive bool
	// IgnoreSignals refuses "signal" requests, as OpenSSH 9.2's sshd does
	// for root sessions.
	IgnoreSignals bool
	// HandshakeDelay holds every accepted connection this long before the
	// SSH handshake starts (cut short by Close or DropConnections).
	HandshakeDelay time.Duration
	// HangExec accepts every exec request and never runs the command: a
	// node whose sshd answers but whose commands never start (a full
	// process table, a hung disk). The session stays open, counted in
	// InFlight, until the client closes it.
	HangExec bool
	// AskClient has the server, once a client has logged in, send it a
	// global request that wants a reply and open a channel to it, as a
	// server may (OpenSSH asks for host key proofs, forwards ports): the
	// client's refusals are counted in Refused.
	AskClient bool
}

// Stats are the server's counters.
type Stats struct {
	Accepted      int64 // TCP connections accepted
	Authenticated int64 // SSH handshakes completed
	Sessions      int64 // exec requests started
	InFlight      int64 // exec requests running now
	MaxInFlight   int64 // the most exec requests ever running at once
	DirectTCPIP   int64 // direct-tcpip channels opened
	Keepalives    int64 // keepalive@openssh.com requests received
	Refused       int64 // AskClient's request and channel the client refused
	StdoutBytes   int64 // bytes of commands' stdout sent to clients
}

// Server is a running in-process SSH server.
type Server struct {
	t        testing.TB
	opts     Options
	config   *ssh.ServerConfig
	listener net.Listener
	hostKeys []ssh.Signer

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	procs     map[int]struct{} // process group ids of running commands
	dropped   chan struct{}    // closed and replaced by DropConnections
	closed    bool
	closeOnce sync.Once
	wg        sync.WaitGroup

	noKeepaliveReply atomic.Bool

	accepted, authenticated, sessions, inFlight, maxInFlight, directTCPIP, keepalives, refused, stdoutBytes atomic.Int64
}

// Start starts a server and closes it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if !isLoopback(opts.Addr) {
		t.Fatalf("sshtest: %s is not a loopback address", opts.Addr)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	hostKeys := opts.HostKeys
	if len(hostKeys) == 0 {
		hostKeys = []ssh.Signer{NewSigner(t)}
	}
	s := &Server{
		t:        t,
		opts:     opts,
		hostKeys: hostKeys,
		conns:    map[net.Conn]struct{}{},
		procs:    map[int]struct{}{},
		dropped:  make(chan struct{}),
	}
	s.config = s.serverConfig()
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		t.Fatalf("sshtest: listen: %v", err)
	}
	s.listener = ln
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range s.opts.AuthorizedKeys {
				if string(k.Marshal()) == string(key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errNotAuthorized
		},
	}
	if s.opts.KeyboardInteractive {
		cfg.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			// Ask, as a password prompt would, then refuse whatever comes back.
			if _, err := ask("", "", []string{"Password: "}, []bool{false}); err != nil {
				return nil, err
			}
			return nil, errNotAuthorized
		}
	}
	for _, k := range s.hostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Host is the listening IP.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.Addr())
	return h
}

// Port is the listening port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// HostKey is the server's first host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKeys[0].PublicKey() }

// Dir is where commands run.
func (s *Server) Dir() string { return s.opts.Dir }

// SetKeepaliveReplies makes the server answer keepalive@openssh.com (the
// default) or leave it unanswered, like a link that silently went dead.
func (s *Server) SetKeepaliveReplies(on bool) { s.noKeepaliveReply.Store(!on) }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Accepted:      s.accepted.Load(),
		Authenticated: s.authenticated.Load(),
		Sessions:      s.sessions.Load(),
		InFlight:      s.inFlight.Load(),
		MaxInFlight:   s.maxInFlight.Load(),
		DirectTCPIP:   s.directTCPIP.Load(),
		Keepalives:    s.keepalives.Load(),
		Refused:       s.refused.Load(),
		StdoutBytes:   s.stdoutBytes.Load(),
	}
}

// DropConnections cuts every open connection (and kills the commands
// they run) but keeps listening: the next dial succeeds.
func (s *Server) DropConnections() {
	s.mu.Lock()
	close(s.dropped)
	s.dropped = make(chan struct{})
	for c := range s.conns {
		c.Close()
	}
	s.killAllLocked()
	s.mu.Unlock()
}

// Close stops listening, cuts every connection, kills running commands
// and waits for all of the server's goroutines. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.listener.Close()
		s.DropConnections()
		s.wg.Wait()
	})
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		dropped := s.dropped
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, dropped)
	}
}

func (s *Server) serveConn(c net.Conn, dropped <-chan struct{}) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if d := s.opts.HandshakeDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-dropped:
			t.Stop()
			return
		}
	}
	sc, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	s.authenticated.Add(1)
	s.wg.Add(1)
	go s.globalRequests(reqs)
	if s.opts.AskClient {
		s.wg.Add(1)
		go s.askClient(sc)
	}
	user := sc.User()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			s.wg.Add(1)
			go s.session(nc, user)
		case "direct-tcpip":
			s.wg.Add(1)
			go s.directTCPIPChannel(nc)
		default:
			nc.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
}

// askClient sends the client a request and opens a channel to it, and
// counts each one it refuses.
func (s *Server) askClient(sc *ssh.ServerConn) {
	defer s.wg.Done()
	if ok, _, err := sc.SendRequest("drover-test@example.org", true, nil); err == nil && !ok {
		s.refused.Add(1)
	}
	ch, reqs, err := sc.OpenChannel("forwarded-tcpip", nil)
	var open *ssh.OpenChannelError
	switch {
	case err == nil:
		go ssh.DiscardRequests(reqs)
		ch.Close()
	case errors.As(err, &open):
		s.refused.Add(1)
	}
}

func (s *Server) globalRequests(reqs <-chan *ssh.Request) {
	defer s.wg.Done()
	for r := range reqs {
		if r.Type == "keepalive@openssh.com" {
			s.keepalives.Add(1)
			if s.noKeepaliveReply.Load() {
				continue
			}
		}
		// OpenSSH answers requests it does not implement, keepalives
		// included, with a failure; clients count any answer as alive.
		if r.WantReply {
			r.Reply(false, nil)
		}
	}
}

func (s *Server) killAllLocked() {
	for pgid := range s.procs {
		killGroup(pgid, "KILL")
	}
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type authError string

func (e authError) Error() string { return string(e) }

const errNotAuthorized = authError("sshtest: key not authorized")

// baseEnv is the environment every command starts from.
func (s *Server) baseEnv(user string) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + s.opts.Dir,
		"USER=" + user,
		"LOGNAME=" + user,
		"SHELL=/bin/sh",
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	return append(env, s.opts.Env...)
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"time"
)

// A minimal ZooKeeper client: just enough of the wire protocol (jute
// records behind a 4-byte length) to open a session, create a znode, ask
// whether one exists and close the session. Every create is a real write,
// acknowledged by the ensemble only after a quorum logged it, which is the
// point: the quorum test needs writes, not pings. Speaking the protocol
// from Go costs no JVM per write on a two-core machine, where launching
// zkCli in a loop would itself disturb the ensemble under test.

// ZooKeeper opcodes and error codes used here (zookeeper.jute, ZooDefs).
const (
	zkOpCreate       = 1
	zkOpExists       = 3
	zkOpCloseSession = -11
	zkErrNoNode      = -101
	zkErrNodeExists  = -110
	zkPermsAll       = 31 // READ|WRITE|CREATE|DELETE|ADMIN
)

// zkSession is one open session on one server.
type zkSession struct {
	conn net.Conn
	xid  int32
}

// zkDial connects to one server and opens a session. A server that is not
// part of a serving quorum closes the connection instead of answering.
func zkDial(ctx context.Context, addr string, sessionTimeout time.Duration) (*zkSession, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var b zkBuf
	b.int32(0)                                    // protocolVersion
	b.int64(0)                                    // lastZxidSeen
	b.int32(int32(sessionTimeout.Milliseconds())) // timeOut
	b.int64(0)                                    // sessionId
	b.buffer(make([]byte, 16))                    // passwd
	b.bool(false)                                 // readOnly
	if err := zkWrite(conn, b.Bytes()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect request: %w", err)
	}
	resp, err := zkRead(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect response (server not serving?): %w", err)
	}
	r := zkReader{b: resp}
	r.int32() // protocolVersion
	timeout := r.int32()
	session := r.int64()
	if r.err != nil || timeout <= 0 || session == 0 {
		conn.Close()
		return nil, fmt.Errorf("session refused (timeout %d, session %#x, %v)", timeout, session, r.err)
	}
	return &zkSession{conn: conn}, nil
}

// call sends one request and returns the reply's error code and body.
func (s *zkSession) call(op int32, body []byte) (int32, []byte, error) {
	s.xid++
	var b zkBuf
	b.int32(s.xid)
	b.int32(op)
	b.Write(body)
	if err := zkWrite(s.conn, b.Bytes()); err != nil {
		return 0, nil, err
	}
	for {
		resp, err := zkRead(s.conn)
		if err != nil {
			return 0, nil, err
		}
		r := zkReader{b: resp}
		xid := r.int32()
		r.int64() // zxid
		code := r.int32()
		if r.err != nil {
			return 0, nil, r.err
		}
		if xid != s.xid { // a watch event or ping reply: not ours
			continue
		}
		return code, r.b, nil
	}
}

// create makes a persistent znode open to all. An existing node is an
// error the caller can tell apart (errZKNodeExists).
func (s *zkSession) create(path string, data []byte) error {
	var b zkBuf
	b.string(path)
	b.buffer(data)
	b.int32(1) // one ACL: world:anyone, all permissions
	b.int32(zkPermsAll)
	b.string("world")
	b.string("anyone")
	b.int32(0) // flags: persistent
	code, _, err := s.call(zkOpCreate, b.Bytes())
	switch {
	case err != nil:
		return err
	case code == zkErrNodeExists:
		return errZKNodeExists
	case code != 0:
		return fmt.Errorf("create %s: error %d", path, code)
	}
	return nil
}

var errZKNodeExists = errors.New("node exists")

// exists reports whether a znode exists.
func (s *zkSession) exists(path string) (bool, error) {
	var b zkBuf
	b.string(path)
	b.bool(false) // no watch
	code, _, err := s.call(zkOpExists, b.Bytes())
	switch {
	case err != nil:
		return false, err
	case code == zkErrNoNode:
		return false, nil
	case code != 0:
		return false, fmt.Errorf("exists %s: error %d", path, code)
	}
	return true, nil
}

// close ends the session (so the ensemble does not keep it until it
// expires) and the connection.
func (s *zkSession) close() {
	_, _, _ = s.call(zkOpCloseSession, nil)
	s.conn.Close()
}

// zkCreateOnce opens a session on the first server of addrs that answers
// and creates path there. A "node exists" on a later server means an
// earlier attempt did create it, whose answer was lost: that is success.
// It returns the server that took the write.
func zkCreateOnce(ctx context.Context, addrs []string, path string, data []byte) (string, error) {
	var errs []error
	for i, addr := range addrs {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s, err := zkDial(actx, addr, 4*time.Second)
		if err == nil {
			err = s.create(path, data)
			s.close()
			if errors.Is(err, errZKNodeExists) && i > 0 {
				err = nil
			}
		}
		cancel()
		if err == nil {
			return addr, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return "", errors.Join(errs...)
}

// zkFourLetter sends a four-letter word (srvr, mntr, ruok) and returns the
// server's answer.
func zkFourLetter(ctx context.Context, addr, word string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, word); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

var zkModeRE = regexp.MustCompile(`(?m)^Mode: (\S+)`)

// zkMode is the server's mode from srvr: leader, follower, standalone, or
// "" with the reason when it is not serving.
func zkMode(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := zkFourLetter(ctx, addr, "srvr")
	if err != nil {
		return "", err
	}
	m := zkModeRE.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no mode in srvr answer: %q", firstLine(out))
	}
	return m[1], nil
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	if sc.Scan() {
		return sc.Text()
	}
	return ""
}

// Framing and jute encoding.

func zkWrite(w io.Writer, payload []byte) error {
	buf := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[4:], payload)
	_, err := w.Write(buf)
	return err
}

func zkRead(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("reply of %d bytes is too large", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

type zkBuf struct{ bytes.Buffer }

func (b *zkBuf) int32(v int32) { _ = binary.Write(b, binary.BigEndian, v) }
func (b *zkBuf) int64(v int64) { _ = binary.Write(b, binary.BigEndian, v) }
func (b *zkBuf) bool(v bool) {
	if v {
		b.WriteByte(1)
	} else {
		b.WriteByte(0)
	}
}
func (b *zkBuf) buffer(p []byte) { b.int32(int32(len(p))); b.Write(p) }
func (b *zkBuf) string(s string) { b.buffer([]byte(s)) }

type zkReader struct {
	b   []byte
	err error
}

func (r *zkReader) take(n int) []byte {
	if r.err != nil || len(r.b) < n {
		if r.err == nil {
			r.err = io.ErrUnexpectedEOF
		}
		return make([]byte, n)
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *zkReader) int32() int32 { return int32(binary.BigEndian.Uint32(r.take(4))) }
func (r *zkReader) int64() int64 { return int64(binary.BigEndian.Uint64(r.take(8))) }

package sshtest

import (
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// directTCPIPChannel connects a direct-tcpip channel to its destination,
// which must be a loopback address: tests never leave 127.0.0.0/8.
func (s *Server) directTCPIPChannel(nc ssh.NewChannel) {
	defer s.wg.Done()
	var req struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &req); err != nil {
		nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	addr := net.JoinHostPort(req.Host, strconv.Itoa(int(req.Port)))
	if !isLoopback(addr) {
		nc.Reject(ssh.Prohibited, "sshtest forwards only to loopback addresses")
		return
	}
	target, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		target.Close()
		return
	}
	s.directTCPIP.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	s.mu.Lock()
	s.conns[target] = struct{}{} // cut by DropConnections like any other link
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, target)
		s.mu.Unlock()
	}()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(target, ch)
		if tc, ok := target.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	go func() {
		defer wg.Done()
		io.Copy(ch, target)
		ch.CloseWrite()
	}()
	wg.Wait()
	ch.Close()
	target.Close()
}

package harness

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// keyPair is an ed25519 key in OpenSSH file formats.
type keyPair struct {
	private []byte // OpenSSH PEM, as ssh-keygen writes it
	public  string // authorized_keys line without a trailing newline
}

// newKeyPair makes an ed25519 key in-process: ssh-keygen is ~100x slower,
// which shows when a cluster has hundreds of nodes each with its own host key.
func newKeyPair(comment string) (keyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("harness: generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return keyPair{}, fmt.Errorf("harness: marshal key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return keyPair{}, fmt.Errorf("harness: public key: %w", err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if comment != "" {
		line += " " + comment
	}
	return keyPair{private: pem.EncodeToMemory(block), public: line}, nil
}

// write stores the key as path (0600) and path.pub (0644).
func (k keyPair) write(path string) error {
	if err := os.WriteFile(path, k.private, 0o600); err != nil {
		return fmt.Errorf("harness: write key: %w", err)
	}
	if err := os.WriteFile(path+".pub", []byte(k.public+"\n"), 0o644); err != nil {
		return fmt.Errorf("harness: write key: %w", err)
	}
	return nil
}

// knownHostsLine is the known_hosts entry for a node's host key: the bare
// address on port 22, [address]:port otherwise, as OpenSSH looks them up.
func knownHostsLine(address string, port int, hostKey keyPair) string {
	host := address
	if port != 22 {
		host = "[" + address + "]:" + strconv.Itoa(port)
	}
	f := strings.Fields(hostKey.public)
	return host + " " + f[0] + " " + f[1]
}

// hostPort joins an address and port for dialing.
func hostPort(address string, port int) string {
	return net.JoinHostPort(address, strconv.Itoa(port))
}

package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/drover-project/drover/manifests"
)

// auth holds the keys the Pool offers: identity files first (they were
// asked for explicitly), then the agent's, without duplicates.
type auth struct {
	files     []ssh.Signer
	agent     agent.ExtendedAgent
	agentConn net.Conn
	log       *zap.Logger
}

// loadAuth reads the identity files and connects to ssh-agent when
// SSH_AUTH_SOCK is set. An unusable file is an error naming it, unless
// the agent holds keys that can stand in for it.
func loadAuth(files []string, log *zap.Logger) (*auth, error) {
	a := &auth{log: log}
	agentKeys, err := a.connectAgent()
	if err != nil {
		return nil, err
	}
	for _, path := range files {
		signer, err := loadIdentity(path, agentKeys)
		if err == nil {
			if signer != nil {
				a.files = append(a.files, signer)
			}
			continue
		}
		if errors.Is(err, fs.ErrNotExist) && len(agentKeys) > 0 {
			log.Warn("identity file missing; using ssh-agent keys", zap.String("file", path))
			continue
		}
		a.close()
		return nil, err
	}
	if len(a.files) == 0 && len(agentKeys) == 0 {
		a.close()
		return nil, errors.New("no SSH keys: set ssh.identityFiles or run ssh-agent with keys and SSH_AUTH_SOCK")
	}
	return a, nil
}

// connectAgent dials SSH_AUTH_SOCK, if set, and lists its keys. An agent
// that cannot be reached is only a warning: identity files may suffice.
func (a *auth) connectAgent() ([]*agent.Key, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		a.log.Warn("ssh-agent unreachable", zap.String("socket", sock), zap.Error(err))
		return nil, nil
	}
	ag := agent.NewClient(conn)
	keys, err := ag.List()
	if err != nil {
		conn.Close()
		a.log.Warn("ssh-agent list failed", zap.String("socket", sock), zap.Error(err))
		return nil, nil
	}
	a.agent, a.agentConn = ag, conn
	return keys, nil
}

// loadIdentity parses one private key. A passphrase-protected key is
// skipped (nil, nil) when the agent holds it, and an error otherwise.
func loadIdentity(path string, agentKeys []*agent.Key) (ssh.Signer, error) {
	data, err := manifests.ReadRegular(path, maxKeyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		pub := missing.PublicKey
		if pub == nil {
			pub = readPublicKey(path + ".pub")
		}
		if pub != nil && agentHas(agentKeys, pub) {
			return nil, nil
		}
		return nil, fmt.Errorf("identity file %s is protected by a passphrase: add it to ssh-agent (ssh-add %s) and set SSH_AUTH_SOCK, or use a key without a passphrase", path, path)
	case err != nil:
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return signer, nil
}

// maxKeyFileBytes bounds a key file read; real keys are a few KB.
const maxKeyFileBytes = 1 << 20

func readPublicKey(path string) ssh.PublicKey {
	data, err := manifests.ReadRegular(path, maxKeyFileBytes)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil
	}
	return pub
}

func agentHas(keys []*agent.Key, pub ssh.PublicKey) bool {
	for _, k := range keys {
		if bytes.Equal(k.Marshal(), pub.Marshal()) {
			return true
		}
	}
	return false
}

// signers is asked at every handshake, so keys added to or removed from
// the agent while drover runs are seen.
func (a *auth) signers() ([]ssh.Signer, error) {
	out := append([]ssh.Signer(nil), a.files...)
	if a.agent == nil {
		return out, nil
	}
	agentSigners, err := a.agent.Signers()
	if err != nil {
		a.log.Warn("ssh-agent signers", zap.Error(err))
		return out, nil
	}
	for _, s := range agentSigners {
		dup := false
		for _, f := range a.files {
			if bytes.Equal(f.PublicKey().Marshal(), s.PublicKey().Marshal()) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out, nil
}

func (a *auth) methods() []ssh.AuthMethod {
	return []ssh.AuthMethod{ssh.PublicKeysCallback(a.signers)}
}

func (a *auth) close() {
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}

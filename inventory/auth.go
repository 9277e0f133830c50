package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keyAgent is the ssh-agent at SSH_AUTH_SOCK, shared by every key set.
type keyAgent struct {
	agent agent.ExtendedAgent
	conn  net.Conn
	keys  []*agent.Key // as listed when the pool started
}

// connectAgent dials SSH_AUTH_SOCK, if set, and lists its keys. An agent
// that cannot be reached is only a warning: identity files may suffice.
func connectAgent(log *zap.Logger) *keyAgent {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		log.Warn("ssh-agent unreachable", zap.String("socket", sock), zap.Error(err))
		return nil
	}
	ag := agent.NewClient(conn)
	keys, err := ag.List()
	if err != nil {
		conn.Close()
		log.Warn("ssh-agent list failed", zap.String("socket", sock), zap.Error(err))
		return nil
	}
	return &keyAgent{agent: ag, conn: conn, keys: keys}
}

func (k *keyAgent) listed() []*agent.Key {
	if k == nil {
		return nil
	}
	return k.keys
}

func (k *keyAgent) close() {
	if k != nil {
		k.conn.Close()
	}
}

// auth holds the keys offered to one host: identity files first (they
// were asked for explicitly), then the agent's, without duplicates. With
// identitiesOnly (ssh_config's IdentitiesOnly), only the agent's keys
// that match an identity file are offered.
type auth struct {
	files []ssh.Signer
	agent *keyAgent
	// only, when set, are the public keys the agent may offer.
	only [][]byte
	log  *zap.Logger
}

// loadAuth reads the identity files. An unusable file is an error naming
// it, unless the agent holds keys that can stand in for it.
func loadAuth(files []string, identitiesOnly bool, ag *keyAgent, log *zap.Logger) (*auth, error) {
	a := &auth{agent: ag, log: log}
	agentKeys := ag.listed()
	if identitiesOnly {
		a.only = [][]byte{}
	}
	for _, path := range files {
		signer, err := loadIdentity(path, agentKeys)
		if err == nil {
			if signer != nil {
				a.files = append(a.files, signer)
				a.allow(signer.PublicKey())
			} else if pub := readPublicKey(path + ".pub"); pub != nil {
				a.allow(pub) // held by the agent
			}
			continue
		}
		if errors.Is(err, fs.ErrNotExist) && len(agentKeys) > 0 {
			log.Warn("identity file missing; using ssh-agent keys", zap.String("file", path))
			continue
		}
		return nil, err
	}
	if len(a.files) == 0 && len(agentKeys) == 0 {
		return nil, errors.New("no SSH keys: set ssh.identityFiles (or IdentityFile in ~/.ssh/config), create ~/.ssh/id_ed25519, or run ssh-agent with keys and SSH_AUTH_SOCK")
	}
	return a, nil
}

func (a *auth) allow(pub ssh.PublicKey) {
	if a.only != nil {
		a.only = append(a.only, pub.Marshal())
	}
}

// loadIdentity parses one private key. A passphrase-protected key is
// skipped (nil, nil) when the agent holds it, and an error otherwise.
func loadIdentity(path string, agentKeys []*agent.Key) (ssh.Signer, error) {
	data, err := readLocalFile(path)
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

func readPublicKey(path string) ssh.PublicKey {
	data, err := readLocalFile(path)
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
	agentSigners, err := a.agent.agent.Signers()
	if err != nil {
		a.log.Warn("ssh-agent signers", zap.Error(err))
		return out, nil
	}
	for _, s := range agentSigners {
		dup := a.only != nil && !slices.ContainsFunc(a.only, func(k []byte) bool { return bytes.Equal(k, s.PublicKey().Marshal()) })
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
	if a == nil {
		return nil
	}
	return []ssh.AuthMethod{ssh.PublicKeysCallback(a.signers)}
}

package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	sshconfig "github.com/kevinburke/ssh_config"
	"go.uber.org/zap"

	"github.com/drover-project/drover/manifests"
)

// DefaultSSHConfigFile is the operator's own ssh_config, read when the
// manifest and the command line name no other.
const DefaultSSHConfigFile = "~/.ssh/config"

// SSHConfig is an OpenSSH client config (ssh_config(5)) as drover reads
// it: the keywords it honours (see resolve) looked up per host alias.
// Host patterns, negations and Include are OpenSSH's; Match supports
// `host` and `all` only: any other criterion (exec, user, localuser,
// originalhost, canonical, final) is refused by the parser, and drover
// reports it as an error naming the file and line. Only the user's config
// is read, not /etc/ssh/ssh_config. The zero value (or nil) is empty.
type SSHConfig struct {
	path string
	cfg  *sshconfig.Config
}

// LoadSSHConfig reads path (a leading ~/ expanded). A missing or
// unreadable file is not an error: it is ignored with one warning, as
// ssh_config is optional (no warning for a missing ~/.ssh/config, the
// usual case). A syntax error is an error naming file and line.
func LoadSSHConfig(path string, log *zap.Logger) (*SSHConfig, error) {
	if log == nil {
		log = zap.NewNop()
	}
	named := path != DefaultSSHConfigFile
	path = manifests.ExpandHome(path)
	data, err := readLocalFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !named {
			log.Debug("no ssh_config", zap.String("file", path))
		} else {
			log.Warn("ssh_config unreadable; ignoring it", zap.String("file", path), zap.Error(err))
		}
		return &SSHConfig{path: path}, nil
	}
	cfg, err := sshconfig.DecodeBytes(data)
	if err != nil {
		return nil, sshConfigError(path, err)
	}
	return &SSHConfig{path: path, cfg: cfg}, nil
}

// ParseSSHConfig parses ssh_config text (for tests and tools); path names
// it in errors.
func ParseSSHConfig(path string, data []byte) (*SSHConfig, error) {
	cfg, err := sshconfig.DecodeBytes(data)
	if err != nil {
		return nil, sshConfigError(path, err)
	}
	return &SSHConfig{path: path, cfg: cfg}, nil
}

// The parser reports "(line, col): message".
var parserPosition = regexp.MustCompile(`^\((\d+), (\d+)\): `)

func sshConfigError(path string, err error) error {
	msg := err.Error()
	if m := parserPosition.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("ssh_config %s:%s: %s", path, m[1], msg[len(m[0]):])
	}
	return fmt.Errorf("ssh_config %s: %s", path, msg)
}

// Path is the file read ("" when none).
func (s *SSHConfig) Path() string {
	if s == nil {
		return ""
	}
	return s.path
}

// get is the first value of key for alias, as OpenSSH takes it.
func (s *SSHConfig) get(alias, key string) string {
	if s == nil || s.cfg == nil {
		return ""
	}
	v, _ := s.cfg.Get(alias, key)
	return strings.TrimSpace(v)
}

// getAll is every value of key for alias (IdentityFile accumulates).
func (s *SSHConfig) getAll(alias, key string) []string {
	if s == nil || s.cfg == nil {
		return nil
	}
	vs, _ := s.cfg.GetAll(alias, key)
	return vs
}

// Hosts lists the concrete host aliases the config names (patterns with
// wildcards or negations left out), in file order: what an operator can
// type as a node's address.
func (s *SSHConfig) Hosts() []string {
	if s == nil || s.cfg == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, h := range s.cfg.Hosts {
		for _, p := range h.Patterns {
			name := p.String()
			if strings.ContainsAny(name, "*?!") || seen[name] {
				continue
			}
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

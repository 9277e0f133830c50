package manifests

import (
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on names. Component and role names end up in unit and directory
// names, so they stay short; node names may be fully qualified host names.
const (
	MaxNameLen     = 63
	MaxNodeNameLen = 253
	MaxVersionLen  = 128
)

// name checks a name of something drover manages (node, component, role,
// label key, cluster).
// It reports whether the name is good.
func (v *validator) name(path, s string) bool { return v.nameMax(path, s, MaxNameLen) }

func (v *validator) nameMax(path, s string, max int) bool {
	switch {
	case s == "":
		v.errorf(path, "required")
	case len(s) > max:
		v.errorf(path, "%q is longer than %d characters", s, max)
	case !IsName(s):
		v.errorf(path, "%q must match %s", s, NamePattern)
	default:
		return true
	}
	return false
}

// version checks a component version: it becomes a directory name.
func (v *validator) version(path, s string) {
	switch {
	case s == "":
		v.errorf(path, "required")
	case len(s) > MaxVersionLen:
		v.errorf(path, "%q is longer than %d characters", s, MaxVersionLen)
	case !IsVersion(s):
		v.errorf(path, "%q must match %s", s, VersionPattern)
	}
}

// labelKeys checks the keys of a label map or selector, in sorted order.
func (v *validator) labelKeys(path string, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		switch {
		case len(k) > MaxNameLen:
			v.errorf(path, "key %q is longer than %d characters", k, MaxNameLen)
		case !IsName(k):
			v.errorf(path, "key %q must match %s", k, NamePattern)
		}
	}
}

// account checks a user or group name as useradd and systemd accept it
// (or a numeric id); what is "user" or "group". Empty means the default.
func (v *validator) account(path, s, what string) {
	if s == "" {
		return
	}
	if !isAccount(s) {
		v.errorf(path, "%q is not a valid %s name", s, what)
	}
}

func isAccount(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	if strings.Trim(s, "0123456789") == "" {
		return true // a numeric id
	}
	s = strings.TrimSuffix(s, "$") // Samba machine accounts end in $
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && !strings.ContainsRune("._-", rune(c)) {
			return false
		}
	}
	return true
}

// duration checks a Duration field: it parses and is positive. Empty means the default.
func (v *validator) duration(path string, d Duration) {
	if d == "" {
		return
	}
	t, err := time.ParseDuration(string(d))
	switch {
	case err != nil:
		v.errorf(path, "%q is not a duration", string(d))
	case t <= 0:
		v.errorf(path, "%q is not a positive duration", string(d))
	}
}

// port checks a TCP port; zeroIsDefault says 0 means "use the default".
func (v *validator) port(path string, p int, zeroIsDefault bool) {
	if p == 0 && zeroIsDefault {
		return
	}
	v.between(path, p, 1, 65535)
}

func (v *validator) between(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.errorf(path, "must be between %d and %d, not %d", lo, hi, n)
	}
}

// oneOf checks an enumerated string; empty means the default.
func (v *validator) oneOf(path, s string, allowed ...string) {
	if s == "" {
		return
	}
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	list := strings.Join(allowed[:len(allowed)-1], ", ") + " or " + allowed[len(allowed)-1]
	v.errorf(path, "must be %s, not %q", list, s)
}

// maxUnavailable checks a count of at least 1 or a percentage in 1..100%.
func (v *validator) maxUnavailable(path string, m *IntOrPercent) {
	if m == nil {
		return
	}
	ok := m.Valid() && m.Value >= 1
	if !ok {
		v.errorf(path, "%q must be a count of at least 1 or a percentage from 1%% to 100%%", m.String())
	}
}

// host checks an address drover or a health check connects to: an IP
// address or a DNS host name, without a port.
func (v *validator) host(path, s string) {
	if !isHost(s) {
		v.errorf(path, "%q is not an IP address or host name", s)
	}
}

func isHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// hostKey is a host in one canonical spelling, to find duplicates.
func hostKey(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// installRoot checks the one directory drover owns on every node: it is
// written into unit files, so it is kept to plain characters.
func (v *validator) installRoot(p, s string) {
	switch {
	case s == "":
	case !path.IsAbs(s):
		v.errorf(p, "%q must be an absolute path", s)
	case path.Clean(s) == "/":
		v.errorf(p, "must not be /")
	case path.Clean(s) != s:
		v.errorf(p, "%q must be a clean path (%s)", s, path.Clean(s))
	case !isPlainPath(s):
		v.errorf(p, "%q may contain only letters, digits, '.', '_', '-' and '/'", s)
	case IsSystemDir(s):
		v.errorf(p, "%s is a system directory; drover deletes what it no longer needs there, so give a directory of its own such as %s", s, DefaultInstallRoot)
	}
}

func isPlainPath(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("._-/", rune(c)) {
			return false
		}
	}
	return true
}

// hasControl reports whether s holds a control character, which would
// break the line-oriented files (units, receipts) values end up in.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// at formats an indexed field path such as spec.nodes[3].
func at(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// paths checks a list of file paths: none may be empty.
func (v *validator) paths(path string, files []string) {
	for i, f := range files {
		if f == "" {
			v.errorf(at(path, i), "required")
		}
	}
}

// access checks a node's or a role's own SSH settings.
func (v *validator) access(path string, a Access) {
	v.paths(path+".identityFiles", a.IdentityFiles)
	v.jumpHosts(path, a.Bastion, a.Jump)
}

// jumpHosts checks bastion and jump under path: one or the other, and
// each jump host's own fields.
func (v *validator) jumpHosts(path string, b *Bastion, jump []Bastion) {
	if b != nil && len(jump) > 0 {
		v.errorf(path+".jump", "set bastion or jump, not both")
	}
	if b != nil {
		v.bastion(path+".bastion", *b)
	}
	for i, j := range jump {
		v.bastion(at(path+".jump", i), j)
	}
}

func (v *validator) bastion(path string, b Bastion) {
	if b.Address == "" {
		v.errorf(path+".address", "required")
	} else {
		v.host(path+".address", b.Address)
	}
	v.port(path+".port", b.Port, true)
	v.account(path+".user", b.User, "user")
	v.paths(path+".identityFiles", b.IdentityFiles)
}

package manifests

import "strings"

// The one rule for names and versions. Names (node, component, role,
// label key, cluster) and versions become path elements, unit names and
// words of scripts on the nodes, so everything that builds those (the
// probe script and its parser, the executor, the wizard) checks with
// these, not a copy. Validate also bounds their length (MaxNameLen,
// MaxVersionLen).
const (
	NamePattern    = "[a-z0-9][a-z0-9._-]*"
	VersionPattern = "[A-Za-z0-9][A-Za-z0-9._+-]*"
)

// IsName reports whether s matches [a-z0-9][a-z0-9._-]*.
func IsName(s string) bool {
	if s == "" || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// IsVersion reports whether s matches [A-Za-z0-9][A-Za-z0-9._+-]*.
func IsVersion(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("._+-", rune(c)) {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
func isAlnum(c byte) bool      { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }

package fleetsim

import (
	"errors"
	"fmt"
	"strings"
)

// ProbeRequest is what a probe script asks of a node, read back from the
// script probes.Script builds (the part after the prelude).
type ProbeRequest struct {
	Root, Units string
	Components  []ProbeWant
}

// ProbeWant is one wanted component of a probe script.
type ProbeWant struct {
	Name    string
	Files   []string
	Service bool
	// Health and Leader: the script runs an exec health / leader check.
	Health, Leader bool
}

// probeMark is the line every probe script prints first.
const probeMark = "dp_p drover-probe 2\n"

// isProbe reports whether a script is a probe body.
func isProbe(script string) bool { return strings.Contains(script, probeMark) }

// ParseProbe reads a probe script body (probes' scriptBody, with or
// without the prelude in front) back into the request it was built from.
// It reads only the lines the body's generator writes and ignores the
// rest (the prelude's function definitions).
func ParseProbe(script string) (ProbeRequest, error) {
	var req ProbeRequest
	vars := map[string]string{}
	var cur *ProbeWant
	sawRoot := false
	for _, line := range strings.Split(script, "\n") {
		switch {
		case strings.HasPrefix(line, "root=") && !sawRoot:
			w, err := shellWords(strings.TrimPrefix(line, "root="))
			if err != nil || len(w) != 1 {
				return req, fmt.Errorf("probe script: bad root line %q", line)
			}
			req.Root, sawRoot = w[0], true
		case strings.HasPrefix(line, "units=") && sawRoot && req.Units == "":
			w, err := shellWords(strings.TrimPrefix(line, "units="))
			if err != nil || len(w) != 1 {
				return req, fmt.Errorf("probe script: bad units line %q", line)
			}
			req.Units = w[0]
		case strings.HasPrefix(line, "dp_f") && strings.Contains(line, "="):
			name, val, _ := strings.Cut(line, "=")
			w, err := shellWords(val)
			if err != nil || len(w) != 1 {
				return req, fmt.Errorf("probe script: bad file line %q", line)
			}
			vars[name] = w[0]
		case strings.HasPrefix(line, "dp_begin "):
			req.Components = append(req.Components, ProbeWant{Name: strings.TrimPrefix(line, "dp_begin ")})
			cur = &req.Components[len(req.Components)-1]
		case strings.HasPrefix(line, "dp_file ") && cur != nil:
			v := strings.Trim(strings.TrimPrefix(line, "dp_file "), `"$`)
			f, ok := vars[v]
			if !ok {
				return req, fmt.Errorf("probe script: file variable %s not set", v)
			}
			cur.Files = append(cur.Files, f)
		case strings.HasPrefix(line, "dp_unitline ") && cur != nil:
			cur.Service = strings.HasSuffix(line, " 1")
		case strings.HasPrefix(line, "if ") && strings.Contains(line, "dp_exec health ") && cur != nil:
			cur.Health = true
		case strings.HasPrefix(line, "if ") && strings.Contains(line, "dp_exec leader ") && cur != nil:
			cur.Leader = true
		case line == "dp_p end":
			cur = nil
		}
	}
	if !sawRoot || req.Units == "" {
		return req, errors.New("probe script: no root and units lines")
	}
	return req, nil
}

// shellWords splits s into words as sh would for the quoting
// inventory.Quote produces (bare words, '...' and \' between them),
// plus double quotes without expansions.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, errors.New("unterminated double quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
			in = true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

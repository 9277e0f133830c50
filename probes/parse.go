package probes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/drover-project/drover/manifests"
)

// The probe output, version 2, is line-oriented; fields are separated by
// one space and every value is a token without spaces except a file path
// or a receipt line, which ends its line:
//
//	drover-probe 2
//	os id=ID version_id=VER arch=ARCH hostname=HOST free=BYTES
//	component NAME                      one block per component:
//	receipt = LINE                      one per line of the receipt file,
//	receipt -|!                         or: none; empty or unreadable
//	active VERSION|-|!                  active link target; none; not a link
//	package VERSION complete|incomplete zero or more
//	file MODE SHA256 PATH               zero or more, one per wanted file,
//	file missing PATH                   in the order asked for
//	file error PATH
//	unit exists=0|1 hash=SHA256|- active=STATE sub=STATE enabled=0|1   optional
//	health exec ok 0|health exec fail CODE                              optional
//	leader exec ok 0|leader exec fail CODE                              optional
//	end
//	done
//
// "-" stands for an unknown or empty token (free=- when df failed).
// Anything else, a missing "done", or a block cut short is an error: a
// probe cut off half-way is Unknown, never a guess.

// ErrTruncated is returned when the output ends before its "done" line.
var ErrTruncated = errors.New("probe output ends before its done line")

// parseError names the offending line.
func parseError(n int, line []byte, msg string) error {
	return fmt.Errorf("probe output line %d: %s: %q", n, msg, clipLine(line))
}

// clipLine keeps error messages short when a line is long (a receipt).
func clipLine(line []byte) []byte {
	if len(line) > 120 {
		return append(line[:120:120], "..."...)
	}
	return line
}

// Parse reads the output of the probe script. It is pure: Node, timing
// and tcp/http health are filled in by Probe. On success the result is
// Known.
func Parse(out []byte) (Observed, error) {
	obs := Observed{Known: true, Components: map[string]*Component{}}
	if len(out) == 0 {
		return Observed{}, errors.New("probe printed nothing")
	}
	if out[len(out)-1] != '\n' {
		// Even a last line that reads "done" is not done until its newline.
		last := out[bytes.LastIndexByte(out, '\n')+1:]
		return Observed{}, fmt.Errorf("%w: last line cut off: %q", ErrTruncated, clipLine(last))
	}
	var (
		cur     *Component
		stage   int    // order inside a block, see the stage* constants
		receipt []byte // the receipt's lines so far
		sawOS   bool
		done    bool
		n       int
		header  = true
	)
	for len(out) > 0 {
		i := bytes.IndexByte(out, '\n') // found: out ends with a newline
		line := out[:i]
		out = out[i+1:]
		n++
		if done {
			return Observed{}, parseError(n, line, "output after done")
		}
		if header {
			header = false
			v, ok := bytes.CutPrefix(line, []byte("drover-probe "))
			if !ok {
				return Observed{}, parseError(n, line, "not drover probe output")
			}
			if string(v) != strconv.Itoa(FormatVersion) {
				return Observed{}, parseError(n, line, fmt.Sprintf("unsupported probe format version (want %d)", FormatVersion))
			}
			continue
		}
		kind, rest, spaced := bytes.Cut(line, []byte(" "))
		var err error
		switch string(kind) {
		case "os":
			if sawOS || cur != nil || len(obs.Components) > 0 {
				return Observed{}, parseError(n, line, "os line out of place")
			}
			sawOS = true
			obs.OS, err = parseOS(rest)
		case "component":
			switch {
			case !sawOS:
				return Observed{}, parseError(n, line, "component before os line")
			case cur != nil:
				return Observed{}, parseError(n, line, "component inside another component's block")
			case !manifests.IsName(string(rest)):
				return Observed{}, parseError(n, line, "bad component name")
			case obs.Components[string(rest)] != nil:
				return Observed{}, parseError(n, line, "component listed twice")
			}
			cur = &Component{Name: string(rest), Packages: map[string]bool{}}
			obs.Components[cur.Name] = cur
			stage = stageComponent
		case "receipt":
			if cur == nil {
				return Observed{}, parseError(n, line, "unknown line outside a component block")
			}
			if stage != stageComponent && (stage != stageReceipt || receipt == nil) {
				return Observed{}, parseError(n, line, "receipt line out of order")
			}
			stage = stageReceipt
			if text, ok := bytes.CutPrefix(rest, []byte("= ")); ok {
				receipt = append(append(receipt, text...), '\n')
				break
			}
			if receipt != nil {
				return Observed{}, parseError(n, line, "receipt line out of order")
			}
			err = parseReceiptState(cur, string(rest))
		case "active":
			if cur == nil {
				return Observed{}, parseError(n, line, "unknown line outside a component block")
			}
			if stage != stageReceipt {
				return Observed{}, parseError(n, line, "active line out of order")
			}
			if receipt != nil {
				parseReceipt(cur, receipt)
				receipt = nil
			}
			stage = stageActive
			err = parseComponentLine(cur, stageActive, rest)
		case "end":
			if cur == nil || spaced {
				return Observed{}, parseError(n, line, "end out of place")
			}
			if stage < stageActive {
				return Observed{}, parseError(n, line, "block ends before its receipt and active lines")
			}
			cur.FilesHash = manifests.ConfigHash(cur.Files)
			cur = nil
		case "done":
			if cur != nil || !sawOS || spaced {
				return Observed{}, parseError(n, line, "done out of place")
			}
			done = true
		default:
			if cur == nil {
				return Observed{}, parseError(n, line, "unknown line outside a component block")
			}
			next, ok := lineStage(string(kind))
			if !ok {
				return Observed{}, parseError(n, line, "unknown line")
			}
			if !inOrder(stage, next) {
				return Observed{}, parseError(n, line, string(kind)+" line out of order")
			}
			stage = next
			err = parseComponentLine(cur, next, rest)
		}
		if err != nil {
			return Observed{}, parseError(n, line, err.Error())
		}
	}
	if !done {
		return Observed{}, fmt.Errorf("%w (%d lines)", ErrTruncated, n)
	}
	return obs, nil
}

// Stages of a component block, in the order its lines must come.
const (
	stageComponent = iota
	stageReceipt
	stageActive
	stagePackage
	stageFile
	stageUnit
	stageHealth
	stageLeader
)

// lineStage is the stage of the lines that may repeat or follow the
// active line (receipt and active lines are parsed in Parse).
func lineStage(kind string) (int, bool) {
	switch kind {
	case "package":
		return stagePackage, true
	case "file":
		return stageFile, true
	case "unit":
		return stageUnit, true
	case "health":
		return stageHealth, true
	case "leader":
		return stageLeader, true
	}
	return 0, false
}

// inOrder: after the receipt and active lines (checked in Parse), package
// and file lines, which repeat; then unit, health and leader, at most once
// each.
func inOrder(stage, next int) bool {
	if stage < stageActive {
		return false
	}
	return next > stage || next == stage && (next == stagePackage || next == stageFile)
}

func parseComponentLine(c *Component, stage int, rest []byte) error {
	switch stage {
	case stageActive:
		switch v := string(rest); {
		case v == "-":
		case v == "!":
			c.ActiveBroken = true
		case isToken(v):
			c.Active = v
		default:
			return errors.New("bad active version")
		}
	case stagePackage:
		v, state, ok := strings.Cut(string(rest), " ")
		if !ok || !isToken(v) || (state != "complete" && state != "incomplete") {
			return errors.New("want: package VERSION complete|incomplete")
		}
		if _, dup := c.Packages[v]; dup {
			return errors.New("package listed twice")
		}
		c.Packages[v] = state == "complete"
	case stageFile:
		return parseFile(c, string(rest))
	case stageUnit:
		return parseUnit(&c.Unit, string(rest))
	case stageHealth:
		return parseExec(&c.Health, "health", string(rest))
	case stageLeader:
		return parseExec(&c.Leader, "leader", string(rest))
	}
	return nil
}

func parseOS(rest []byte) (OS, error) {
	vals, err := fields(string(rest), "id", "version_id", "arch", "hostname", "free")
	if err != nil {
		return OS{}, err
	}
	for _, v := range vals {
		if v != "-" && !isToken(v) {
			return OS{}, errors.New("bad os value")
		}
	}
	o := OS{ID: dash(vals[0]), VersionID: dash(vals[1]), Arch: dash(vals[2]), Hostname: dash(vals[3]), FreeBytes: -1}
	if vals[4] != "-" {
		if o.FreeBytes, err = strconv.ParseInt(vals[4], 10, 64); err != nil || o.FreeBytes < 0 {
			return OS{}, errors.New("bad free bytes")
		}
	}
	return o, nil
}

// parseReceiptState reads a receipt line that is not the receipt's text.
func parseReceiptState(c *Component, v string) error {
	switch v {
	case "-":
		return nil
	case "!":
		c.ReceiptError = "receipt file is unreadable or empty"
		return nil
	}
	return errors.New("want: receipt = LINE, - or ! (unreadable)")
}

// parseReceipt reads the receipt's text. What the file says is a fact
// about the node, so a bad receipt is a ReceiptError, not a parse error.
func parseReceipt(c *Component, raw []byte) {
	var r Receipt
	if err := json.Unmarshal(raw, &r); err != nil {
		c.ReceiptError = "receipt is not valid JSON: " + err.Error()
		return
	}
	if r.Component != c.Name {
		c.ReceiptError = fmt.Sprintf("receipt is for component %q", r.Component)
		return
	}
	c.Receipt = &r
}

func parseFile(c *Component, v string) error {
	first, p, _ := strings.Cut(v, " ")
	switch first {
	case "missing":
		if !goodPath(p) {
			return errors.New("bad file path")
		}
		c.MissingFiles = append(c.MissingFiles, p)
		return nil
	case "error":
		return fmt.Errorf("could not read %s on the node", p)
	}
	sum, p, ok := strings.Cut(p, " ")
	mode, err := strconv.ParseUint(first, 8, 32)
	switch {
	case !ok || !goodPath(p):
		return errors.New("want: file MODE SHA256 PATH")
	case err != nil || mode > 0o7777 || len(first) > 4:
		return errors.New("bad file mode")
	case !isSHA256(sum):
		return errors.New("bad file sha256")
	}
	// Same reading of the mode as manifests.ParseMode, so ConfigHash
	// compares like with like.
	c.Files = append(c.Files, manifests.FileDigest{Path: p, Mode: os.FileMode(mode), SHA256: sum})
	return nil
}

func parseUnit(u *UnitState, v string) error {
	vals, err := fields(v, "exists", "hash", "active", "sub", "enabled")
	if err != nil {
		return err
	}
	switch {
	case vals[0] == "0" && vals[1] == "-":
	case vals[0] == "1" && vals[1] == "-":
		return errors.New("unit file is there but could not be read")
	case vals[0] == "1" && isSHA256(vals[1]):
		u.Exists, u.Hash = true, vals[1]
	default:
		return errors.New("bad unit exists/hash")
	}
	if !isToken(vals[2]) || !isToken(vals[3]) || (vals[4] != "0" && vals[4] != "1") {
		return errors.New("bad unit state")
	}
	u.ActiveState, u.SubState, u.Enabled = vals[2], vals[3], vals[4] == "1"
	return nil
}

// parseExec reads the result of an exec check: what follows "health" or
// "leader" on its line.
func parseExec(h *HealthResult, line, v string) error {
	kind, rest, _ := strings.Cut(v, " ")
	if kind != string(manifests.HealthExec) { // the only kind the script runs
		return fmt.Errorf("unknown %s kind", line)
	}
	result, code, _ := strings.Cut(rest, " ")
	rc, err := strconv.Atoi(code)
	switch {
	case err != nil || rc < 0 || strconv.Itoa(rc) != code:
		return fmt.Errorf("bad %s exit code", line)
	case result == "ok" && rc == 0, result == "fail" && rc != 0:
		*h = execResult(rc)
		return nil
	default:
		return fmt.Errorf("want: %s exec ok 0|fail CODE", line)
	}
}

// fields splits "k1=v1 k2=v2 ..." whose keys must be exactly keys, in order.
func fields(s string, keys ...string) ([]string, error) {
	vals := make([]string, len(keys))
	for i, k := range keys {
		var f string
		if i == len(keys)-1 {
			f, s = s, ""
		} else {
			var ok bool
			if f, s, ok = strings.Cut(s, " "); !ok {
				return nil, fmt.Errorf("want %d fields %s", len(keys), strings.Join(keys, ", "))
			}
		}
		v, ok := strings.CutPrefix(f, k+"=")
		if !ok || v == "" || strings.ContainsRune(v, ' ') {
			return nil, fmt.Errorf("want field %s=", k)
		}
		vals[i] = v
	}
	return vals, nil
}

// dash maps the "-" placeholder to "".
func dash(v string) string {
	if v == "-" {
		return ""
	}
	return v
}

// isToken is what dp_tok lets through: [A-Za-z0-9._+~-]+, not starting with ".".
func isToken(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+~-", c) >= 0) {
			return false
		}
	}
	return true
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

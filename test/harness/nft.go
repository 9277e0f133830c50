package harness

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// nftTablePrefix starts the name of every nftables table the harness makes:
// one table per cluster (inet drover_test_<cluster>), so concurrent clusters
// never touch each other's rules and a dead cluster's table is found by name.
const nftTablePrefix = "drover_test_"

func nftTableName(cluster string) string {
	return nftTablePrefix + strings.ReplaceAll(cluster, "-", "_")
}

// nftRuleset creates a cluster's table: a set of cut addresses and, at input
// and output, a drop of every packet from or to one of them. Loopback traffic
// passes both hooks, so either direction of a connection is lost in both
// places, and a TCP connect to a cut node times out instead of being refused.
// Limitation (docs/DESIGN.md): connections a node opens itself leave from
// 127.0.0.1, so a cut node can still reach others.
func nftRuleset(table string) string {
	return fmt.Sprintf(`table inet %[1]s {
	set cut { type ipv4_addr; }
	chain input {
		type filter hook input priority filter - 10; policy accept;
		ip saddr @cut drop
		ip daddr @cut drop
	}
	chain output {
		type filter hook output priority filter - 10; policy accept;
		ip saddr @cut drop
		ip daddr @cut drop
	}
}
`, table)
}

// runNft feeds a script to `nft -f -`.
func runNft(nft, script string) error {
	if nft == "" {
		p, err := lookTool("nft")
		if err != nil {
			return err
		}
		nft = p
	}
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("harness: nft: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Cut makes a node unreachable: packets to and from its address are dropped
// until Restore. Existing connections stall; new ones time out.
func (c *Cluster) Cut(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	table := nftTableName(c.Name)
	if !c.nftOn {
		if err := runNft(c.tools["nft"], nftRuleset(table)); err != nil {
			return err
		}
		c.nftOn = true
	}
	return runNft(c.tools["nft"], fmt.Sprintf("add element inet %s cut { %s }\n", table, n.Address))
}

// Restore undoes Cut. Restoring a node that is not cut is a no-op.
func (c *Cluster) Restore(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.nftOn {
		return nil
	}
	// Flush and re-add the others: `delete element` of a missing element is
	// an error, and this keeps Restore idempotent without parsing nft output.
	table := nftTableName(c.Name)
	cut, err := listCut(c.tools["nft"], table)
	if err != nil {
		return err
	}
	var keep []string
	for _, a := range cut {
		if a != n.Address {
			keep = append(keep, a)
		}
	}
	script := fmt.Sprintf("flush set inet %s cut\n", table)
	if len(keep) > 0 {
		script += fmt.Sprintf("add element inet %s cut { %s }\n", table, strings.Join(keep, ", "))
	}
	return runNft(c.tools["nft"], script)
}

// listCut returns the addresses in a table's cut set.
func listCut(nft, table string) ([]string, error) {
	out, err := exec.Command(nft, "list", "set", "inet", table, "cut").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("harness: nft list set: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return parseNftElements(string(out)), nil
}

// parseNftElements extracts the elements of `nft list set` output:
// "elements = { 127.0.2.1, 127.0.2.3 }", possibly over several lines.
func parseNftElements(out string) []string {
	i := strings.Index(out, "elements = {")
	if i < 0 {
		return nil
	}
	rest := out[i+len("elements = {"):]
	if j := strings.IndexByte(rest, '}'); j >= 0 {
		rest = rest[:j]
	}
	return strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

// deleteNftTable removes a table if it exists. A missing nft binary is fine
// when nothing was ever cut: then no table can exist.
func deleteNftTable(nft, table string) error {
	if nft == "" {
		p, err := lookTool("nft")
		if err != nil {
			return nil
		}
		nft = p
	}
	out, err := exec.Command(nft, "delete", "table", "inet", table).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("No such file or directory")) {
			return nil
		}
		return fmt.Errorf("harness: nft delete table %s: %w: %s", table, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// listNftTables returns our inet tables (by prefix).
func listNftTables(nft string) ([]string, error) {
	if nft == "" {
		p, err := lookTool("nft")
		if err != nil {
			return nil, nil
		}
		nft = p
	}
	out, err := exec.Command(nft, "list", "tables", "inet").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("harness: nft list tables: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return parseNftTables(string(out)), nil
}

// parseNftTables picks our table names out of `nft list tables inet`.
func parseNftTables(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "table" && f[1] == "inet" && strings.HasPrefix(f[2], nftTablePrefix) {
			names = append(names, f[2])
		}
	}
	return names
}

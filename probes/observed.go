// Package probes learns, in one SSH round trip per node, everything the
// reconciler needs: OS facts and, per component, receipt, active version,
// package dirs, on-disk config hash, unit state and health.
package probes

import (
	"time"

	"github.com/drover-project/drover/manifests"
)

// Request says what to look at on one node: the components it should
// have (so their files and health can be checked). Components the node
// has but should not are found from their receipts.
type Request struct {
	InstallRoot string
	Components  []Want
	// UnitDir is where drover's unit files live; "" means
	// DefaultUnitDir. Tests point it at a temp dir.
	UnitDir string
}

// DefaultUnitDir is where drover writes drover-<component>.service.
const DefaultUnitDir = "/etc/systemd/system"

// Want is one component the node should have.
type Want struct {
	Name    string
	Version string
	// Files are the absolute paths of the rendered files, hashed on the node.
	Files []string
	// Service is set when the component has a systemd unit.
	Service bool
	// Health is the check to run; hosts left empty mean the node's address.
	Health *manifests.Health
	// Leader is a quorum component's leader check (exec), or nil.
	Leader *manifests.Health
}

// Observed is what one probe of one node found. When Known is false the
// rest is empty and Reason says why: never a guess.
type Observed struct {
	Node     string
	Known    bool
	Reason   string // unreachable, auth, hostkey, timeout, sudo, probe-error
	Error    string
	ProbedAt time.Time
	Duration time.Duration
	OS       OS
	// Components has every wanted component and every one with a receipt.
	Components map[string]*Component
}

// OS facts of a node.
type OS struct {
	ID        string
	VersionID string
	Arch      string
	Hostname  string
	// FreeBytes is the free space in the install root's cache dir, where
	// artifacts are uploaded (or its nearest existing parent); -1 when df
	// could not tell.
	FreeBytes int64
}

// Component is what a node has of one component.
type Component struct {
	Name    string
	Receipt *Receipt
	// ReceiptError is set when a receipt file is there but unusable
	// (unreadable, not JSON, for another component); Receipt is then nil.
	ReceiptError string
	// Active is the version the active symlink points at, "" if none.
	Active string
	// ActiveBroken is set when <root>/active/<name> exists but is not a
	// symlink whose target names a version.
	ActiveBroken bool
	// Packages maps each unpacked version dir to whether it is complete.
	Packages map[string]bool
	// Files are the digests of the wanted files as on disk (missing ones
	// are absent) and FilesHash their manifests.ConfigHash.
	Files     []manifests.FileDigest
	FilesHash string
	// MissingFiles are the wanted files that are not regular files on disk.
	MissingFiles []string
	// Unit is the state of drover-<name>.service.
	Unit UnitState
	// Health is the result of the health check.
	Health HealthResult
	// Leader is the result of a quorum component's leader check: OK when
	// this member leads. Checked where the health check would be.
	Leader HealthResult
}

// UnitState is what systemd says of the component's unit.
type UnitState struct {
	// Exists is whether the unit file is on disk; Hash is its sha256.
	Exists      bool
	Hash        string
	ActiveState string // active, inactive, failed, activating, ...
	SubState    string
	Enabled     bool
}

// HealthResult is the outcome of one health check.
type HealthResult struct {
	// Checked is false when there is no check or nothing to check yet.
	Checked bool
	OK      bool
	Message string
}

// Receipt is written on the node as the last step of every action, at
// <installRoot>/receipts/<component>.json: the truth about what drover
// installed there.
type Receipt struct {
	Component      string    `json:"component"`
	Version        string    `json:"version"`
	ArtifactSHA256 string    `json:"artifactSha256,omitempty"`
	ConfigHash     string    `json:"configHash"`
	UnitHash       string    `json:"unitHash,omitempty"`
	Generation     string    `json:"generation"`
	Time           time.Time `json:"time"`
	// Previous is the version before this one, kept for rollback.
	Previous string `json:"previous,omitempty"`
	// Files are the absolute paths of the rendered files drover wrote, so
	// files outside the version dir are found again when a later
	// manifest drops them or the component is removed.
	Files []string `json:"files,omitempty"`
}

package manifests

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// FieldDoc documents one manifest field: docs/MANIFEST.md and the JSON
// Schema (`drover schema`) are both generated from these and from the Go
// types, and a test fails when a field of the types has no doc or a doc
// names no field, so neither can drift from what Load accepts.
type FieldDoc struct {
	Description string
	// Default is the value when the field is left out, as a manifest
	// would write it; "" when there is none.
	Default string
	// Example is a value as YAML.
	Example string
	// Effect is what changing the field does on the nodes.
	Effect   string
	Required bool
	// Enum lists the only values accepted; Pattern is a regular
	// expression the value must match.
	Enum    []string
	Pattern string
}

// Effects shared by many fields.
const (
	effectNone        = "Nothing on the nodes: it changes how drover works, not what a node has."
	effectRollout     = "Nothing by itself: it changes how later changes roll out."
	effectReconfigure = "reconfigure on every node the component runs on: the files or unit are rewritten and the unit restarted, one batch at a time."
	effectHealth      = "Nothing is rewritten: the new check decides health from the next probe; a node failing it is restarted."
	effectAccess      = "Nothing on the nodes: drover connects another way from the next probe."
)

const durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

// fieldDocs is keyed by Go type name and JSON field name.
var fieldDocs = map[string]FieldDoc{
	"Cluster.apiVersion": {Description: "Version of the manifest format.", Example: APIVersion, Required: true, Enum: []string{APIVersion},
		Effect: "Only " + APIVersion + " exists."},
	"Cluster.kind": {Description: "What the document describes.", Example: Kind, Required: true, Enum: []string{Kind},
		Effect: "Only " + Kind + " exists."},
	"Cluster.metadata": {Description: "Names the cluster.", Example: "{name: prod}", Required: true, Effect: "See its fields."},
	"Cluster.spec":     {Description: "The desired state of the cluster.", Example: "{nodes: [...], components: [...]}", Required: true, Effect: "See its fields."},

	"Metadata.name": {Description: "Name of the cluster, in metrics and the console.", Example: "prod", Required: true, Pattern: "^" + NamePattern + "$",
		Effect: "Nothing on the nodes; the metrics' cluster label changes."},
	"Metadata.labels": {Description: "Free-form labels of the cluster.", Example: "{team: infra}", Effect: effectNone},

	"Spec.installRoot": {Description: "Where drover keeps everything it writes on a node, apart from systemd unit files.", Default: DefaultInstallRoot, Example: "/opt/drover",
		Effect: "Every component is installed again under the new root (drover finds nothing there); the old root is left as it is."},
	"Spec.probeInterval": {Description: "How often the daemon probes every node.", Default: DefaultProbeInterval, Example: "30s", Pattern: durationPattern, Effect: effectNone},
	"Spec.paused":        {Description: "Probe and report, change nothing, on every node.", Default: "false", Example: "true", Effect: "Nothing: while true no action runs; set back to false, pending actions roll out."},
	"Spec.ssh":           {Description: "How drover reaches the nodes.", Example: "{user: deploy, identityFiles: [~/.ssh/id_ed25519]}", Effect: effectAccess},
	"Spec.nodes": {Description: "The machines drover manages, inline. Set this or inventoryFile.", Example: "[{name: m1, address: 10.0.0.1, roles: [master]}]",
		Effect: "A node added gets its components installed; a node taken out is no longer managed (nothing is removed from it)."},
	"Spec.inventoryFile": {Description: "A YAML file (relative to the manifest) holding `nodes:`, instead of listing them inline. Problems in it are reported with its path.", Example: "inventory.yaml",
		Effect: "As for nodes: the nodes it lists are the cluster's."},
	"Spec.components": {Description: "The software drover installs, in any order (dependsOn orders them).", Example: "[{name: app, version: 1.0.0, ...}]", Required: true,
		Effect: "A component added is installed on its nodes; one taken out is removed from them."},
	"Spec.rollout": {Description: "The cluster-wide rollout policy.", Example: "{maxUnavailable: 1, roleOrder: [master, agent]}", Effect: effectRollout},

	"SSH.user":              {Description: "Login user on the nodes (sudo is used when it is not root).", Default: DefaultSSHUser + " (after ssh_config)", Example: "deploy", Effect: effectAccess},
	"SSH.port":              {Description: "SSH port of the nodes.", Default: strconv.Itoa(DefaultSSHPort) + " (after ssh_config)", Example: "2222", Effect: effectAccess},
	"SSH.identityFiles":     {Description: "Private keys to offer, tried in order (ssh-agent keys too).", Example: "[~/.ssh/id_ed25519]", Effect: effectAccess},
	"SSH.knownHostsFile":    {Description: "known_hosts checked strictly for every node's host key.", Default: DefaultKnownHosts, Example: "/etc/drover/known_hosts", Effect: effectAccess},
	"SSH.acceptNewHostKeys": {Description: "Record first-seen host keys in knownHostsFile instead of refusing them; a changed key is always refused.", Default: "false", Example: "true", Effect: effectAccess},
	"SSH.bastion":           {Description: "The jump host every connection goes through (or use jump for a chain).", Example: "{address: bastion.example.com}", Effect: effectAccess},
	"SSH.jump":              {Description: "A chain of jump hosts, outermost first.", Example: "[{address: outer.example.com}, {address: inner}]", Effect: effectAccess},
	"SSH.connectTimeout":    {Description: "How long one connection attempt may take.", Default: DefaultConnectTimeout, Example: "10s", Pattern: durationPattern, Effect: effectAccess},
	"SSH.concurrency":       {Description: "Dials and sessions in flight across all nodes.", Default: strconv.Itoa(DefaultConcurrency), Example: "16", Effect: effectNone},
	"SSH.configFile":        {Description: "OpenSSH client config consulted for what the manifest leaves unset.", Default: "~/.ssh/config", Example: "/etc/drover/ssh_config", Effect: effectAccess},
	"SSH.roles":             {Description: "Access for the nodes of a role: their own keys, known_hosts or jump hosts.", Example: "{dmz: {bastion: {address: gw}}}", Effect: effectAccess},

	"Bastion.address":        {Description: "Host name or address of the jump host (an ssh_config alias works).", Example: "bastion.example.com", Required: true, Effect: effectAccess},
	"Bastion.port":           {Description: "Its SSH port.", Default: "22", Example: "2222", Effect: effectAccess},
	"Bastion.user":           {Description: "Its login user.", Default: "ssh.user", Example: "jump", Effect: effectAccess},
	"Bastion.identityFiles":  {Description: "Keys for the jump host.", Default: "ssh.identityFiles", Example: "[~/.ssh/jump_ed25519]", Effect: effectAccess},
	"Bastion.knownHostsFile": {Description: "known_hosts for the jump host.", Default: "ssh.knownHostsFile", Example: "~/.ssh/known_hosts", Effect: effectAccess},

	"Access.identityFiles":  {Description: "Keys for these nodes, instead of ssh.identityFiles.", Example: "[~/.ssh/dmz_ed25519]", Effect: effectAccess},
	"Access.knownHostsFile": {Description: "known_hosts for these nodes.", Example: "/etc/drover/dmz_known_hosts", Effect: effectAccess},
	"Access.bastion":        {Description: "Jump host for these nodes, instead of the cluster's.", Example: "{address: dmz-gw}", Effect: effectAccess},
	"Access.jump":           {Description: "Jump chain for these nodes, outermost first.", Example: "[{address: gw1}, {address: gw2}]", Effect: effectAccess},

	"Node.name": {Description: "Name of the node, unique in the cluster.", Example: "m1", Required: true, Pattern: "^" + NamePattern + "$",
		Effect: "A renamed node is a new node: its components are installed (they are found in place) and the old name is gone."},
	"Node.address": {Description: "IP address or host name drover connects to; templates see it as .Node.Address.", Example: "10.0.0.1", Required: true,
		Effect: "Files whose templates use addresses are rendered anew: reconfigure where they differ."},
	"Node.port":   {Description: "SSH port of this node.", Default: "ssh.port", Example: "2222", Effect: effectAccess},
	"Node.user":   {Description: "Login user on this node.", Default: "ssh.user", Example: "admin", Effect: effectAccess},
	"Node.roles":  {Description: "Roles of the node; components choose nodes by role.", Example: "[master]", Effect: "Components that now match are installed, ones that no longer match are removed."},
	"Node.labels": {Description: "Labels of the node; components choose nodes by selector.", Example: "{zone: a}", Effect: "As for roles, through selectors; templates see them as .Node.Labels."},
	"Node.paused": {Description: "Probe and plan this node, change nothing on it.", Default: "false", Example: "true", Effect: "Nothing while true; pending actions roll out once false."},

	"Component.name": {Description: "Name of the component: its unit is drover-<name>.service.", Example: "zookeeper", Required: true, Pattern: "^" + NamePattern + "$",
		Effect: "A renamed component is removed under its old name and installed under the new one."},
	"Component.version": {Description: "Version to run; a directory name on the node.", Example: "3.8.4", Required: true, Pattern: "^" + VersionPattern + "$",
		Effect: "upgrade (or downgrade) on every node it runs on: the new version is unpacked next to the old, the active link switched, the unit restarted; the old version is kept for rollback."},
	"Component.roles":     {Description: "The nodes with any of these roles run it (or use selector; with neither, every node does).", Example: "[master]", Effect: "Installed on nodes that now match, removed from those that no longer do."},
	"Component.selector":  {Description: "The nodes with all of these labels run it.", Example: "{zone: a}", Effect: "Installed on nodes that now match, removed from those that no longer do."},
	"Component.artifact":  {Description: "The tar.gz unpacked into the version's directory.", Example: "{url: https://example.com/app-1.0.tar.gz, sha256: ...}", Effect: "A new sha256 is an upgrade in place: unpacked again, unit restarted."},
	"Component.files":     {Description: "Config files rendered per node from templates.", Example: "[{path: conf/app.cfg, template: \"port=8080\"}]", Effect: effectReconfigure},
	"Component.service":   {Description: "The systemd unit drover writes and runs for it; without one drover only unpacks and renders.", Example: "{exec: \"{{ .Dir }}/bin/app\"}", Effect: effectReconfigure},
	"Component.health":    {Description: "How drover decides the component works on a node (after each change, and on every probe).", Example: "{http: {port: 8080, path: /health}}", Effect: effectHealth},
	"Component.dependsOn": {Description: "Components that must be in place and healthy before this one changes.", Example: "[zookeeper]", Effect: effectRollout},
	"Component.quorum":    {Description: "A majority-based ensemble: members change one at a time, only while every other member is healthy. Growing or shrinking it is one member at a time: a node joins only while the healthy members are a majority of the group it makes (preJoin first), a node leaves only while the others are a majority of the group it leaves (postLeave after its stop), joins before leaves. Templates see .Component.Joining and .Component.Members.", Default: "false", Example: "true", Effect: effectRollout},
	"Component.leader":    {Description: "For a quorum component, a check that passes on the leading member, which is changed last.", Example: "{exec: {command: [sh, -c, \"echo srvr | nc localhost 2181 | grep -q leader\"]}}", Effect: effectRollout},
	"Component.hooks": {Description: "Commands drover runs on the node around what it does to the service: preStop, postStart, preRemove; for a quorum component also preJoin and postLeave, run on a member that stays.", Example: "{preStop: {command: [\"{{ .Dir }}/bin/etcdctl\", move-leader, ...]}}",
		Effect: "Nothing by itself: the next stop, start or remove runs them."},
	"Component.rollout": {Description: "Tightens the cluster's rollout for this component.", Example: "{maxUnavailable: 1}", Effect: effectRollout},
	"Component.state": {Description: "present, or absent to remove it from every node.", Default: StatePresent, Example: StateAbsent, Enum: []string{StatePresent, StateAbsent},
		Effect: "absent: remove on every node that has it (unit stopped and deleted, files and packages removed), in reverse dependency order."},

	"Artifact.path": {Description: "Local tar.gz, relative to the manifest's directory, uploaded by drover. Set path or url.", Example: "artifacts/app-1.0.tar.gz",
		Effect: "Nothing unless the sha256 changes too."},
	"Artifact.url": {Description: "URL the node fetches the tar.gz from itself. Set path or url.", Example: "https://example.com/app-1.0.tar.gz",
		Effect: "Nothing unless the sha256 changes too."},
	"Artifact.stripComponents": {Description: "Leading path elements dropped from every member when unpacking (tar --strip-components), so a release tarball's top folder is not in every path.", Default: "0", Example: "1",
		Effect: "upgrade in place: the archive is unpacked again; the unit restarted."},
	"Artifact.sha256": {Description: "sha256 of the tar.gz, checked before it is used.", Example: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Required: true, Pattern: "^[0-9a-fA-F]{64}$",
		Effect: "upgrade in place: the new archive is fetched, checked, unpacked; the unit restarted."},

	"File.path": {Description: "Where the file goes: relative to the version's directory, or absolute.", Example: "conf/zoo.cfg", Required: true,
		Effect: effectReconfigure},
	"File.mode": {Description: "Octal file mode.", Default: DefaultFileMode, Example: "0600", Pattern: "^0?[0-7]{3,4}$", Effect: effectReconfigure},
	"File.sensitive": {Description: "The content is secret: plan and apply show only \"(sensitive content changed)\", never the content or a diff, and drover never reads it back from the node.", Default: "false", Example: "true",
		Effect: "Nothing on the nodes: only what plans show."},
	"File.onChange": {Description: "What a change or drift of this file needs of the service: restart, reload (the unit's ExecReload, needs service.reload) or none (a file only a check or a hook reads). The strongest of the changed files wins; plan shows it.",
		Default: OnChangeRestart, Example: OnChangeReload, Enum: []string{OnChangeRestart, OnChangeReload, OnChangeNone}, Effect: "Nothing by itself: the next change of the file does what it says."},
	"File.template": {Description: "Go text/template of the content; sees .Node, .Cluster, .Dir, .Component (.Joining, .Members) and helpers such as nodesWithRole.", Example: "clientPort=2181", Required: true, Effect: effectReconfigure},

	"Service.exec":        {Description: "Command line of the unit (a template: {{ .Dir }} is the active directory), or a list of arguments, each a template, which drover quotes for systemd (no $VAR expansion).", Example: "[\"{{ .Dir }}/bin/app\", --port, \"8080\"]", Required: true, Effect: effectReconfigure},
	"Service.reload":      {Description: "Command systemd runs to reload the service (ExecReload=), in the same two forms as exec; files with onChange: reload need it.", Example: "[/bin/kill, -HUP, $MAINPID]", Effect: effectReconfigure},
	"Service.user":        {Description: "User the service runs as.", Default: "root", Example: "zookeeper", Effect: effectReconfigure},
	"Service.group":       {Description: "Group the service runs as.", Default: "the user's group", Example: "zookeeper", Effect: effectReconfigure},
	"Service.environment": {Description: "Environment variables of the service.", Example: "{JAVA_HOME: /usr/lib/jvm/default}", Effect: effectReconfigure},
	"Service.restart":     {Description: "systemd's Restart=.", Default: DefaultRestart, Example: "always", Enum: restartValues(), Effect: effectReconfigure},

	"Health.exec":    {Description: "A command run on the node; passes when it exits 0. Set exactly one of exec, http, tcp.", Example: "{command: [/usr/bin/true]}", Effect: effectHealth},
	"Health.http":    {Description: "An HTTP GET from the node.", Example: "{port: 8080, path: /health}", Effect: effectHealth},
	"Health.tcp":     {Description: "A TCP connection from the node.", Example: "{port: 2181}", Effect: effectHealth},
	"Health.timeout": {Description: "How long one check may take.", Default: DefaultCheckTimeout, Example: "5s", Pattern: durationPattern, Effect: effectHealth},

	"ExecCheck.command": {Description: "argv, never pasted into a shell; use [sh, -c, \"...\"] for shell syntax.", Example: "[curl, -fsS, http://localhost:8080/ready]", Required: true, Effect: effectHealth},

	"HTTPCheck.host":           {Description: "Host to ask.", Default: "the node's address", Example: "localhost", Effect: effectHealth},
	"HTTPCheck.port":           {Description: "Port to ask.", Example: "8080", Required: true, Effect: effectHealth},
	"HTTPCheck.path":           {Description: "Path to GET.", Default: "/", Example: "/health", Effect: effectHealth},
	"HTTPCheck.expectStatus":   {Description: "Status that passes.", Default: "200", Example: "204", Effect: effectHealth},
	"HTTPCheck.expectStatuses": {Description: "More statuses that pass, beside expectStatus.", Example: "[200, 204]", Effect: effectHealth},
	"HTTPCheck.headers":        {Description: "Headers sent with the request (Host sets the virtual host); values are templates.", Example: "{Authorization: Bearer x}", Effect: effectHealth},
	"HTTPCheck.bodyRegexp":     {Description: "Regular expression (Go RE2) the body must match (the first 64 KiB).", Example: "^ok", Effect: effectHealth},
	"HTTPCheck.bodyJSON":       {Description: "Top-level fields of a JSON body and the value each must have, compared as text (\"true\" matches true and \"true\").", Example: "{health: \"true\"}", Effect: effectHealth},

	"Hooks.preStop":   {Description: "Runs before drover stops or restarts the running service: drain, move leadership away. Failing, it fails the action (rollback or halt) with its output.", Example: "{command: [\"{{ .Dir }}/bin/etcdctl\", move-leader, ...]}", Effect: "Nothing by itself."},
	"Hooks.postStart": {Description: "Runs after drover (re)starts the service, before the health gate. Failing, it fails the action.", Example: "{command: [/usr/local/bin/warm-cache]}", Effect: "Nothing by itself."},
	"Hooks.preRemove": {Description: "Runs before drover removes the component from the node (kept in the receipt, so it runs even after the manifest dropped the component).", Example: "{command: [sh, -c, \"...\"]}", Effect: "Nothing by itself."},
	"Hooks.preJoin":   {Description: "Quorum components: runs on a healthy member that stays, before drover installs the component on a node joining a group that has healthy members: the service's own membership command (etcdctl member add). .Node is the member it runs on, .Member the node that joins, .Component.Members the group with it. Must succeed when the node is a member already (drover retries). Failing, the action fails with its output and the rollout halts; nothing was installed.", Example: "{command: [\"{{ .Dir }}/etcdctl\", \"--endpoints=http://{{ .Node.Address }}:2379\", member, add, \"{{ .Member.Name }}\", \"--peer-urls=http://{{ .Member.Address }}:2380\"]}", Effect: "Nothing by itself: the next join runs it."},
	"Hooks.postLeave": {Description: "Quorum components: runs on a healthy member that stays, after drover stopped the service on a node that leaves the group (it lost the role or selector) and before the rest of the remove: etcdctl member remove. .Member is the node that leaves, .Component.Members the group without it. Failing, the action fails with its output and the rollout halts; the node keeps the component (stopped).", Example: "{command: [sh, -c, \"...member remove...\"]}", Effect: "Nothing by itself: the next leave runs it."},
	"Hook.command":    {Description: "argv run on the node from /, each argument a template with the context files have; use [sh, -c, \"...\"] for shell syntax.", Example: "[\"{{ .Dir }}/bin/etcdctl\", \"--endpoints={{ .Node.Address }}:2379\", endpoint, health]", Required: true, Effect: "Nothing by itself."},
	"Hook.timeout":    {Description: "How long the hook may run before it is killed (and fails).", Default: DefaultHookTimeout, Example: "30s", Pattern: durationPattern, Effect: "Nothing by itself."},

	"TCPCheck.host": {Description: "Host to connect to.", Default: "the node's address", Example: "localhost", Effect: effectHealth},
	"TCPCheck.port": {Description: "Port to connect to.", Example: "2181", Required: true, Effect: effectHealth},

	"ComponentRollout.maxUnavailable": {Description: "At most this many (or this percentage) of the component's nodes down at once.", Default: "rollout.maxUnavailable", Example: "25%", Effect: effectRollout},

	"Rollout.roleOrder":      {Description: "Roles changed first to last; nodes of a later role wait for earlier ones.", Example: "[master, agent]", Effect: effectRollout},
	"Rollout.maxUnavailable": {Description: "At most this many (or this percentage) of a component's nodes down at once.", Default: "1", Example: "10%", Effect: effectRollout},
	"Rollout.healthTimeout":  {Description: "How long a changed node may take to pass its health check before the change counts as failed.", Default: DefaultHealthTimeout, Example: "2m", Pattern: durationPattern, Effect: effectRollout},
	"Rollout.maxFailures": {Description: "How many nodes may hold an action that failed at a step (upload, unpack, a script) before the rollout halts; a failed node keeps its slot in maxUnavailable until an action there succeeds.", Default: "0", Example: "2",
		Effect: effectRollout},
	"Rollout.onFailure": {Description: "On a failed change: rollback to the previous version and continue, or halt the rollout.", Default: OnFailureRollback, Example: OnFailureHalt, Enum: []string{OnFailureRollback, OnFailureHalt},
		Effect: effectRollout},
}

// docField is one field of a manifest type, as the reference shows it.
type docField struct {
	Name string
	Type reflect.Type
	Doc  FieldDoc
	// key is the fieldDocs key.
	key string
	// textOrList: a command given as one line or a list of arguments.
	textOrList bool
}

var (
	durationType     = reflect.TypeFor[Duration]()
	intOrPercentType = reflect.TypeFor[IntOrPercent]()
)

// docFields lists t's manifest fields in declaration order; an embedded
// struct's fields are inlined, documented under its own type.
func docFields(t reflect.Type) []docField {
	var out []docField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			out = append(out, docFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := t.Name() + "." + name
		out = append(out, docField{Name: name, Type: f.Type, Doc: fieldDocs[key], key: key, textOrList: f.Tag.Get("drover") == "textOrList"})
	}
	return out
}

// isObject reports whether t is documented as a type of its own.
func isObject(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != durationType && t != intOrPercentType
}

// docTypes lists every struct type a manifest holds, from Cluster, in the
// order a reader meets them.
func docTypes() []reflect.Type {
	var out []reflect.Type
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if !isObject(t) || seen[t] {
			return
		}
		seen[t] = true
		out = append(out, t)
		for _, f := range docFields(t) {
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Cluster]())
	return out
}

// typeName is a field's type as the reference writes it.
func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t == intOrPercentType:
		return "integer or percentage"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Struct:
		return "[" + t.Name() + "](#" + strings.ToLower(t.Name()) + ")"
	case reflect.Int:
		return "integer"
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	}
	panic(fmt.Sprintf("manifest reference: no name for type %s", t))
}

// Reference is docs/MANIFEST.md: every field of the manifest with its
// type, default, an example and what a change of it causes on a node.
func Reference() string {
	var b strings.Builder
	b.WriteString(`# Manifest reference

<!-- Generated from manifests/types.go and manifests/reference.go by
     "go test ./manifests -run TestManifestReference -update". Do not edit. -->

A manifest is one YAML document. Every field below is checked by
` + "`drover validate`" + `, which names the field path of every problem;
an unknown or misspelt field is an error. ` + "`drover schema`" + ` prints the
same rules as a JSON Schema for editors (yaml-language-server:
` + "`# yaml-language-server: $schema=drover.schema.json`" + ` at the top of the file).

Durations are Go durations such as ` + "`30s`, `5m`, `1h30m`" + `. "Effect" is
what changing the field in a running cluster makes drover do on the nodes.
`)
	for _, t := range docTypes() {
		fmt.Fprintf(&b, "\n## %s\n\n", t.Name())
		if t.Name() == "Node" {
			b.WriteString("A node also takes the fields of [Access](#access): its own identityFiles, knownHostsFile, bastion and jump.\n\n")
		}
		b.WriteString("| Field | Type | Default | Example | Description | Effect of a change |\n")
		b.WriteString("|-------|------|---------|---------|-------------|--------------------|\n")
		for _, f := range docFields(t) {
			if t.Name() == "Node" && strings.HasPrefix(f.key, "Access.") {
				continue
			}
			d := f.Doc
			name := "`" + f.Name + "`"
			if d.Required {
				name += " (required)"
			}
			typ := typeName(f.Type)
			if f.textOrList {
				typ = "string or list of string"
			}
			if len(d.Enum) > 0 {
				typ += ": " + strings.Join(quoteAll(d.Enum), ", ")
			}
			def := "-"
			if d.Default != "" {
				def = "`" + d.Default + "`"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | `%s` | %s | %s |\n", name, typ, def, cell(d.Example), cell(d.Description), cell(d.Effect))
		}
	}
	return b.String()
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + s + "`"
	}
	return out
}

// cell keeps text inside one table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/manifests"
)

func newRenderCommand() *cobra.Command {
	var file, node, component, output string
	cmd := &cobra.Command{
		Use:   "render -f FILE --node NAME [--component C]",
		Short: "Print the files one node would receive",
		Long: `render renders, on this host, every config file the node would receive from
the components that are present on it, exactly as drover would upload them.
Each file is printed after a header line giving its path on the node, its
mode and the sha256 of its content. Unit files are not shown: the daemon
writes those.`,
		Example: "  drover render -f examples/dcos/cluster.yaml --node m1 --component zookeeper",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, ok := loadManifest(file, cmd.ErrOrStderr())
			if !ok {
				return &exitError{code: 1}
			}
			files, err := nodeFiles(l.Cluster, node, component)
			if err != nil {
				return err
			}
			if output == outputText {
				return manifests.WriteNodeFiles(cmd.OutOrStdout(), files)
			}
			return writeStructured(cmd.OutOrStdout(), output, renderReportOf(node, files))
		},
	}
	addManifestFlag(cmd, &file)
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&node, "node", "", "name of the node (required)")
	cmd.Flags().StringVar(&component, "component", "", "only this component's files")
	_ = cmd.MarkFlagRequired("node")
	_ = cmd.RegisterFlagCompletionFunc("node", completeNames(&file, func(c *manifests.Cluster) (names []string) {
		for _, n := range c.Spec.Nodes {
			names = append(names, n.Name)
		}
		return names
	}))
	_ = cmd.RegisterFlagCompletionFunc("component", completeNames(&file, func(c *manifests.Cluster) (names []string) {
		for _, comp := range c.Spec.Components {
			names = append(names, comp.Name)
		}
		return names
	}))
	return cmd
}

// completeNames completes a flag from names in the manifest given with -f.
func completeNames(file *string, names func(*manifests.Cluster) []string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		l, err := manifests.Load(*file)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names(l.Cluster), cobra.ShellCompDirectiveNoFileComp
	}
}

// nodeFiles renders what node receives, keeping only component when set.
func nodeFiles(c *manifests.Cluster, node, component string) ([]manifests.NodeFile, error) {
	n, ok := c.NodeByName(node)
	if !ok {
		return nil, fmt.Errorf("no node named %q in the manifest", node)
	}
	if component != "" {
		comp, ok := c.ComponentByName(component)
		switch {
		case !ok:
			return nil, fmt.Errorf("no component named %q in the manifest", component)
		case comp.State == manifests.StateAbsent:
			return nil, fmt.Errorf("component %s is absent: no node receives its files", component)
		case !comp.Matches(n):
			return nil, fmt.Errorf("component %s does not run on node %s", component, node)
		}
	}
	all, err := c.RenderNode(n)
	if err != nil {
		return nil, err
	}
	var out []manifests.NodeFile
	for _, f := range all {
		if component == "" || f.Component == component {
			out = append(out, f)
		}
	}
	return out, nil
}

// renderReport is `drover render -o json|yaml` (docs/CLI.md).
type renderReport struct {
	Node  string           `json:"node"`
	Files []renderFileJSON `json:"files"`
}

type renderFileJSON struct {
	Path      string `json:"path"`
	Component string `json:"component"`
	Mode      string `json:"mode"` // octal, e.g. "0644"
	SHA256    string `json:"sha256"`
	Content   string `json:"content"`
}

func renderReportOf(node string, files []manifests.NodeFile) renderReport {
	r := renderReport{Node: node, Files: make([]renderFileJSON, 0, len(files))}
	for _, f := range files {
		r.Files = append(r.Files, renderFileJSON{Path: f.Path, Component: f.Component,
			Mode: fmt.Sprintf("%04o", f.Mode&manifests.ModeBits), SHA256: f.Digest(), Content: string(f.Content)})
	}
	return r
}

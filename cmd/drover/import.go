package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/manifests"
)

func newImportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Turn another tool's inventory into drover nodes",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "ansible INVENTORY",
		Short: "Print an Ansible inventory (INI or YAML) as a drover nodes: block",
		Long: `import ansible reads an Ansible inventory, INI or YAML, and prints its hosts as
a drover nodes: block, for a manifest's spec or an inventoryFile. Groups
(with their parents, through children) become roles; ansible_host,
ansible_port, ansible_user and ansible_ssh_private_key_file the node's
address, port, user and identityFiles; a ProxyJump (or ssh -W ProxyCommand)
in ansible_ssh_common_args or ansible_ssh_extra_args its jump hosts; every
other variable a label. Each variable it cannot map is a warning on stderr.
A YAML inventory can also be named directly as spec.inventoryFile.`,
		Example: "  drover import ansible hosts.ini > nodes.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			imp, err := manifests.ImportAnsibleFile(args[0])
			if err != nil {
				return err
			}
			out, err := manifests.FormatNodes(imp.Nodes)
			if err != nil {
				return err
			}
			for _, w := range imp.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", args[0], w)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
	return cmd
}

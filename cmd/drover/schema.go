package main

import (
	"github.com/spf13/cobra"

	"github.com/drover-project/drover/manifests"
)

func newSchemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the manifest, for editors",
		Long: `schema prints a JSON Schema (draft-07) of the cluster manifest, generated from
the same types and field documentation as docs/MANIFEST.md. Editors with
yaml-language-server complete and check a manifest against it: save it
and put "# yaml-language-server: $schema=drover.schema.json" at the top of
the manifest. drover validate checks more (references between fields,
templates, addresses) than any schema can.`,
		Example: "  drover schema > drover.schema.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := manifests.Schema()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/drover-project/drover/metrics"
)

func newRulesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rules",
		Short: "Print the Prometheus alerting and recording rules drover ships",
		Long: `rules prints the Prometheus rule file for drover's metrics (docs/ALERTS.md
explains each alert), ready for rule_files in prometheus.yml.`,
		Example: "  drover rules > /etc/prometheus/rules/drover.yaml && promtool check rules /etc/prometheus/rules/drover.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(metrics.AlertRules)
			return err
		},
	}
}

func newDashboardCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dashboard",
		Short: "Print the Grafana dashboard drover ships, ready to import",
		Long: `dashboard prints the Grafana dashboard for drover's metrics in Grafana's
export form: importing it (Dashboards > New > Import) asks which Prometheus
datasource to use.`,
		Example: "  drover dashboard > drover-dashboard.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := metrics.DashboardForImport()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
}

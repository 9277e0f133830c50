package manifests

import (
	"slices"
	"testing"
)

// TestValidateHostilePaths: every name drover writes for itself in a
// version dir, and every system directory as the install root, is a
// validation error with its field path. Without the reservation a file
// "path: .drover-files/<abs>" is copied to <abs> by a rollback (issue 24).
func TestValidateHostilePaths(t *testing.T) {
	const f0 = "spec.components[0].files[0].path: "
	cases := []struct {
		name   string
		mutate func(c *Cluster)
		want   []string
	}{
		{"kept files dir", func(c *Cluster) {
			zk(c).Files[0].Path = ".drover-files/usr/local/bin/evil"
			zk(c).Files[0].Mode = "4755"
		},
			[]string{f0 + `".drover-files/usr/local/bin/evil" is inside .drover-files, which drover keeps for itself in the version directory`}},
		{"kept files dir unclean", func(c *Cluster) { zk(c).Files[0].Path = "./conf/../.drover-files//etc/x" },
			[]string{f0 + `"./conf/../.drover-files//etc/x" is inside .drover-files, which drover keeps for itself in the version directory`}},
		{"kept unit", func(c *Cluster) { zk(c).Files[0].Path = ".drover-unit" },
			[]string{f0 + `".drover-unit" is inside .drover-unit, which drover keeps for itself in the version directory`}},
		{"env file", func(c *Cluster) { zk(c).Files[0].Path = ".drover-env" },
			[]string{f0 + `".drover-env" is inside .drover-env, which drover keeps for itself in the version directory`}},
		{"complete marker", func(c *Cluster) { zk(c).Files[0].Path = ".complete" },
			[]string{f0 + `".complete" is inside .complete, which drover keeps for itself in the version directory`}},
		{"complete marker as a dir", func(c *Cluster) { zk(c).Files[0].Path = ".complete/x" },
			[]string{f0 + `".complete/x" is inside .complete, which drover keeps for itself in the version directory`}},
		{"any .drover- name in the version dir", func(c *Cluster) { zk(c).Files[0].Path = ".drover-next/x" },
			[]string{f0 + `".drover-next/x" is inside .drover-next, which drover keeps for itself in the version directory`}},
		{"a temp name beside a file", func(c *Cluster) { zk(c).Files[0].Path = "conf/.drover-0123456789abcdef.tmp" },
			[]string{f0 + `"conf/.drover-0123456789abcdef.tmp": names starting with .drover- are drover's temporary files`}},
		{"a temp name outside", func(c *Cluster) { zk(c).Files[0].Path = "/etc/.drover-restore.tmp" },
			[]string{f0 + `"/etc/.drover-restore.tmp": names starting with .drover- are drover's temporary files`}},
		{"a name that only looks alike is fine", func(c *Cluster) { zk(c).Files[0].Path = "conf/drover-files/x" }, nil},
		{"deeper .complete is fine", func(c *Cluster) { zk(c).Files[0].Path = "conf/.complete" }, nil},
	}
	for _, dir := range []string{"/", "/var", "/usr", "/etc", "/home", "/tmp", "/boot", "/opt", "/srv", "/root",
		"/usr/local", "/var/lib", "/var/cache", "/var/tmp", "/usr/lib", "/proc/self", "/sys/fs", "/dev", "/run"} {
		want := `spec.installRoot: ` + dir + ` is a system directory; drover deletes what it no longer needs there, so give a directory of its own such as /opt/drover`
		if dir == "/" {
			want = `spec.installRoot: must not be /`
		}
		cases = append(cases, struct {
			name   string
			mutate func(c *Cluster)
			want   []string
		}{"installRoot " + dir, func(c *Cluster) { c.Spec.InstallRoot = dir }, []string{want}})
	}
	for _, dir := range []string{"/opt/drover", "/var/lib/drover", "/srv/drover", "/usr/local/drover", "/data", "/dev/fd/3/opt/drover"} {
		cases = append(cases, struct {
			name   string
			mutate func(c *Cluster)
			want   []string
		}{"installRoot " + dir + " is fine", func(c *Cluster) { c.Spec.InstallRoot = dir }, nil})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseBase(t)
			c.SetDefaults()
			tc.mutate(c)
			got := problemStrings(c.Validate())
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

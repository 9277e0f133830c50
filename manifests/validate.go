package manifests

// Validate returns every problem with the manifest, errors and warnings,
// each with its field path. Call SetDefaults first.
func (c *Cluster) Validate() Problems {
	var ps Problems
	if c.APIVersion != APIVersion {
		ps = append(ps, Problem{Path: "apiVersion", Message: "must be " + APIVersion})
	}
	// TODO(manifests helper): the full rule set.
	return ps
}

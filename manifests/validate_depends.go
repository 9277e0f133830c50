package manifests

import "strings"

// dependencies checks dependsOn: every name is a component, a present
// component does not wait for an absent one, and there are no cycles.
func (v *validator) dependencies() {
	comps := v.c.Spec.Components
	index := map[string]int{}
	for i, comp := range comps {
		if _, dup := index[comp.Name]; !dup {
			index[comp.Name] = i
		}
	}
	edges := make([][]int, len(comps))
	for i, comp := range comps {
		for j, dep := range comp.DependsOn {
			p := at(componentPath(i)+".dependsOn", j)
			k, ok := index[dep]
			switch {
			case !ok:
				v.errorf(p, "unknown component %q", dep)
			case comp.State != StateAbsent && comps[k].State == StateAbsent:
				v.errorf(p, "%q is absent", dep)
			default:
				edges[i] = append(edges[i], k)
			}
		}
	}
	v.cycles(edges)
}

// cycles reports each dependency cycle once, as the path that closes it
// ("a -> b -> a"), at the component the path starts from.
func (v *validator) cycles(edges [][]int) {
	comps := v.c.Spec.Components
	const (
		unvisited = iota
		onPath
		finished
	)
	state := make([]int, len(edges))
	var path []int
	reported := map[string]bool{}
	var visit func(i int)
	visit = func(i int) {
		state[i] = onPath
		path = append(path, i)
		for _, k := range edges[i] {
			switch state[k] {
			case unvisited:
				visit(k)
			case onPath:
				start := len(path) - 1
				for path[start] != k {
					start--
				}
				names := make([]string, 0, len(path)-start+1)
				for _, n := range path[start:] {
					names = append(names, comps[n].Name)
				}
				cycle := strings.Join(append(names, comps[k].Name), " -> ")
				if !reported[cycle] {
					reported[cycle] = true
					v.errorf(componentPath(k)+".dependsOn", "dependency cycle: %s", cycle)
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = finished
	}
	for i := range edges {
		if state[i] == unvisited {
			visit(i)
		}
	}
}

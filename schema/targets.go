package schema

// TargetChanges names the targets (devices) a collector's SetTargets call
// added, changed (stopped and started again with their new settings) and
// removed. The SNMP poller and the gNMI collector both report it.
type TargetChanges struct {
	Added, Changed, Removed []string
}

// Empty reports whether nothing changed.
func (c TargetChanges) Empty() bool {
	return len(c.Added) == 0 && len(c.Changed) == 0 && len(c.Removed) == 0
}

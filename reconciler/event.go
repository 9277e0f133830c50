package reconciler

// EventKind says what an Event reports.
type EventKind string

const (
	// EventProbe: a node was probed (Message says what was found).
	EventProbe EventKind = "probe"
	// EventActionStart, EventActionDone, EventActionFailed: an action on
	// a node started, ended well, or failed (Message is the error, without
	// the action and node the event names).
	EventActionStart  EventKind = "action-start"
	EventActionDone   EventKind = "action-done"
	EventActionFailed EventKind = "action-failed"
	// EventRollback: a failed upgrade is being rolled back.
	EventRollback EventKind = "rollback"
	// EventHalt: the rollout halted (Message is why).
	EventHalt EventKind = "halt"
)

package config

// Policy is the least-privilege section: bundles of grants per role,
// organisation- and team-wide rules, facts about tools, and workflow rules
// over what a session has already read.
type Policy struct {
	// Mode is the default for every rule set: "enforce" (default) or
	// "monitor" (a denial is recorded as would_deny and the call goes on).
	Mode string `yaml:"mode"`
	// Record, when set, appends every tools/call decision (caller, tool,
	// arguments, outcome) to this JSON-lines file (mode 0600) for
	// `gatehouse policy test`. Arguments may be sensitive: opt in.
	Record string `yaml:"record"`
	// Approvals bound how calls held for a human decision wait.
	Approvals Approvals `yaml:"approvals"`
	// Tools states facts about upstream tools that annotations cannot be
	// trusted for: data labels (for workflow rules and conditions) and the
	// read-only / destructive class.
	Tools []*ToolFacts `yaml:"tools"`
	// Organisation rules apply to every caller; its denies cannot be
	// overridden by any team or bundle.
	Organisation *RuleSet `yaml:"organisation"`
	// Teams holds rules for every agent of a team, by team name.
	Teams map[string]*RuleSet `yaml:"teams"`
	// Bundles package the grants of one role, by bundle name.
	Bundles map[string]*Bundle `yaml:"bundles"`
	// Workflows deny, or hold for approval, calls that would combine data a
	// session has read with tools of another kind.
	Workflows []*Workflow `yaml:"workflows"`
}

// Approvals configure held calls.
type Approvals struct {
	// Wait is how long a call is held for a decision (default 2m); after
	// it the call fails, and the same call may be retried once approved.
	Wait Duration `yaml:"wait"`
	// TTL is how long an approval request stays decidable and an approved
	// call stays usable (default 1h).
	TTL Duration `yaml:"ttl"`
}

// RuleSet is a list of allow and deny rules with a mode.
type RuleSet struct {
	// Mode overrides policy.mode for these rules: enforce or monitor.
	Mode  string  `yaml:"mode"`
	Allow []*Rule `yaml:"allow"`
	Deny  []*Rule `yaml:"deny"`
}

// Bundle packages one role's access. Agents, teams, users and groups are
// its members; `gatehouse grant add` adds an agent for a bounded time.
type Bundle struct {
	// Version is bumped by the operator on each change; it is part of the
	// policy version that approvals are bound to.
	Version     int     `yaml:"version"`
	Description string  `yaml:"description"`
	Mode        string  `yaml:"mode"`
	Members     Members `yaml:"members"`
	Allow       []*Rule `yaml:"allow"`
	Deny        []*Rule `yaml:"deny"`
	// Limits and Audit are the slots the rate-limit and audit settings of
	// later releases fill in; they are kept, not interpreted, today.
	Limits map[string]any `yaml:"limits"`
	Audit  map[string]any `yaml:"audit"`
	// Inspect are inspection action rules tried before inspect.actions for
	// calls this bundle allowed.
	Inspect []*InspectAction `yaml:"inspect"`
}

// Members of a bundle.
type Members struct {
	Agents []string `yaml:"agents"` // agent names
	Teams  []string `yaml:"teams"`
	Users  []string `yaml:"users"`  // usernames (people calling directly)
	Groups []string `yaml:"groups"` // user groups
	// Everyone makes every caller a member (anonymous ones included when
	// authentication is off).
	Everyone bool `yaml:"everyone"`
}

// Rule matches calls. Each field narrows it; a rule without tools, prompts
// or resources applies to all three.
type Rule struct {
	// Name identifies the rule in denials, explanations and records.
	Name string `yaml:"name"`
	// Servers limits the rule to these virtual servers (default: all).
	Servers []string `yaml:"servers"`
	// Tools are globs over tool names as the upstream names them, or over
	// "upstream/tool" (e.g. "crm/get_*").
	Tools []string `yaml:"tools"`
	// Prompts are globs over prompt names, like Tools.
	Prompts []string `yaml:"prompts"`
	// Resources are globs over resource URIs (e.g. "crm://customers/*").
	Resources []string `yaml:"resources"`
	// Class limits tool rules to read_only, write (not read-only) or
	// destructive tools, from annotations corrected by policy.tools.
	Class string `yaml:"class"`
	// Labels limits the rule to tools carrying one of these data labels.
	Labels []string `yaml:"labels"`
	// When is a CEL condition over agent, user, tool, args, request and
	// session; the rule matches only when it is true.
	When string `yaml:"when"`
	// Reason is shown to the caller when this rule denies.
	Reason string `yaml:"reason"`
	// Mode overrides the rule set's mode.
	Mode string `yaml:"mode"`
}

// ToolFacts are operator-stated facts about tools of one upstream.
type ToolFacts struct {
	Upstream string   `yaml:"upstream"`
	Tools    []string `yaml:"tools"` // globs over the upstream's tool names
	Labels   []string `yaml:"labels"`
	// ReadOnly and Destructive override the tools' annotations.
	ReadOnly    *bool `yaml:"read_only"`
	Destructive *bool `yaml:"destructive"`
}

// Workflow is a rule over a session's history: once a session has called
// a tool carrying one of After's labels, a call to a tool carrying one of
// Calls' labels is denied or held for approval.
type Workflow struct {
	Name   string   `yaml:"name"`
	After  []string `yaml:"after"`
	Calls  []string `yaml:"calls"`
	Action string   `yaml:"action"` // "deny" or "approve"
	Reason string   `yaml:"reason"`
	Mode   string   `yaml:"mode"`
}

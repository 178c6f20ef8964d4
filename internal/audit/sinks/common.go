// Package sinks delivers audit records outside the gateway: to a file,
// webhooks, Splunk, syslog (CEF), Azure Monitor (Microsoft Sentinel),
// Kafka, S3 and OTLP. Every sink implements audit.Sink: Send is at least
// once and in order, a failed batch is resent whole, and receivers
// deduplicate on the record id.
//
// This file holds what the sinks share: the OCSF form of a record.
package sinks

import (
	"encoding/json"
	"math"
	"strings"

	"gatehouse/internal/audit"
)

// ProductVersion is the gateway version the SIEM formats carry (OCSF
// metadata.product.version, the CEF header's device version). Set it once
// at startup, before any sink runs, when the build has another version.
var ProductVersion = "0.1.0"

// OCSFVersion is the OCSF schema version OCSF produces.
const OCSFVersion = "1.3.0"

// OCSF API Activity identifiers.
const (
	OCSFClassAPIActivity      = 6003
	OCSFCategoryApplication   = 6
	ocsfClassName             = "API Activity"
	ocsfCategoryName          = "Application Activity"
	ocsfActivityCreate        = 1
	ocsfActivityRead          = 2
	ocsfActivityUpdate        = 3
	ocsfActivityDelete        = 4
	ocsfActivityOther         = 99
	ocsfStatusUnknown         = 0
	ocsfStatusSuccess         = 1
	ocsfStatusFailure         = 2
	ocsfSeverityUnknown       = 0
	ocsfSeverityInformational = 1
	ocsfSeverityLow           = 2
	ocsfSeverityMedium        = 3
	ocsfUserTypeUnknown       = 0
	ocsfUserTypeUser          = 1
	ocsfUserTypeAdmin         = 2
	ocsfUserTypeSystem        = 3
	ocsfUserTypeOther         = 99
	ocsfMaxInlineConversation = 4096 // bytes of Context.Conversation kept in unmapped.ai
	ocsfProductName           = "Gatehouse"
	ocsfVendorName            = "Gatehouse"
)

var (
	ocsfActivityNames = map[int]string{
		ocsfActivityCreate: "Create", ocsfActivityRead: "Read",
		ocsfActivityUpdate: "Update", ocsfActivityDelete: "Delete",
	}
	ocsfSeverityNames = map[int]string{
		ocsfSeverityUnknown: "Unknown", ocsfSeverityInformational: "Informational",
		ocsfSeverityLow: "Low", ocsfSeverityMedium: "Medium",
	}
	ocsfStatusNames = map[int]string{
		ocsfStatusUnknown: "Unknown", ocsfStatusSuccess: "Success", ocsfStatusFailure: "Failure",
	}

	// ocsfMethodActivity classes MCP methods. tools/call is not here: a
	// tool's class (read-only, destructive) is not in the record, so a
	// call is Other (99) with activity_name "tools/call".
	ocsfMethodActivity = map[string]int{
		"tools/list":               ocsfActivityRead,
		"prompts/list":             ocsfActivityRead,
		"prompts/get":              ocsfActivityRead,
		"resources/list":           ocsfActivityRead,
		"resources/templates/list": ocsfActivityRead,
		"resources/read":           ocsfActivityRead,
		"completion/complete":      ocsfActivityRead,
		"roots/list":               ocsfActivityRead,
		"tasks/get":                ocsfActivityRead,
		"tasks/list":               ocsfActivityRead,
		"tasks/result":             ocsfActivityRead,
		"resources/subscribe":      ocsfActivityCreate,
		"resources/unsubscribe":    ocsfActivityDelete,
		"logging/setLevel":         ocsfActivityUpdate,
	}

	// ocsfVerbActivity classes auth, admin and policy actions
	// ("agent.created", "token.revoked") by their last dot-separated word.
	ocsfVerbActivity = map[string]int{
		"created": ocsfActivityCreate, "issued": ocsfActivityCreate, "added": ocsfActivityCreate,
		"registered": ocsfActivityCreate, "requested": ocsfActivityCreate, "imported": ocsfActivityCreate,
		"read": ocsfActivityRead, "listed": ocsfActivityRead, "viewed": ocsfActivityRead,
		"exported": ocsfActivityRead, "fetched": ocsfActivityRead,
		"updated": ocsfActivityUpdate, "changed": ocsfActivityUpdate, "rotated": ocsfActivityUpdate,
		"renamed": ocsfActivityUpdate, "enabled": ocsfActivityUpdate, "disabled": ocsfActivityUpdate,
		"approved": ocsfActivityUpdate, "rejected": ocsfActivityUpdate, "decided": ocsfActivityUpdate,
		"reloaded": ocsfActivityUpdate, "set": ocsfActivityUpdate,
		"deleted": ocsfActivityDelete, "removed": ocsfActivityDelete, "revoked": ocsfActivityDelete,
		"expired": ocsfActivityDelete, "purged": ocsfActivityDelete,
	}
)

// OCSF maps a record to an OCSF 1.3.0 API Activity event (class 6003,
// category 6 Application Activity). Absent (zero) fields are left out.
// The mapping (docs/audit.md carries the same table):
//
//	OCSF attribute                   Record field / rule
//	-------------------------------  ---------------------------------------------------------------
//	class_uid, class_name            6003 "API Activity"
//	category_uid, category_name      6 "Application Activity"
//	activity_id, activity_name       kinds mcp.request and mcp.server_request, by MCP method (Action):
//	                                   Read (2): tools/list, prompts/list, prompts/get, resources/list,
//	                                     resources/templates/list, resources/read, completion/complete,
//	                                     roots/list, tasks/get, tasks/list, tasks/result
//	                                   Create (1): resources/subscribe; Delete (4): resources/unsubscribe;
//	                                   Update (3): logging/setLevel
//	                                   tools/call, every other method and all mcp.notification: Other (99)
//	                                   (the record does not carry the tool's read-only/destructive class)
//	                                 auth/admin/policy kinds, by Action's last dot-separated word:
//	                                   Create: created issued added registered requested imported
//	                                   Read: read listed viewed exported fetched
//	                                   Update: updated changed rotated renamed enabled disabled approved
//	                                     rejected decided reloaded set
//	                                   Delete: deleted removed revoked expired purged
//	                                 otherwise Other (99); activity_name is then Action
//	type_uid, type_name              600300 + activity_id, "API Activity: " + activity_name
//	time                             Time, epoch milliseconds
//	duration                         DurationMS rounded to whole milliseconds
//	message                          "<Action> [<Target.Server>/]<tool|prompt|resource|object>: <Outcome.Status>"
//	severity_id, severity            Outcome.Status: allowed 1 Informational; error, pending 2 Low;
//	                                 denied, would_deny 3 Medium; other 0 Unknown
//	status_id, status                Success (1): allowed or would_deny without a JSON-RPC error;
//	                                 Failure (2): denied, error, pending, or Outcome.ErrorCode/Error set;
//	                                 Unknown (0): no status. (A tool result with isError is a Success
//	                                 of the API call; see unmapped.result.is_error.)
//	status_code                      Outcome.Status (allowed, denied, error, would_deny, pending)
//	status_detail                    Outcome.Reason
//	actor.user.uid                   Actor.ID ("agent:agt_…", "user:alice")
//	actor.user.name                  agent: Actor.AgentName; others: Actor.User; else Actor.ID, else
//	                                 Actor.Kind, else "unknown"
//	actor.user.type, .type_id        Actor.Kind: user→User 1, admin→Admin 2, system→System 3,
//	                                 agent→"Agent" Other 99, anonymous/empty→Unknown 0
//	actor.user.groups[].name         Actor.Team
//	actor.app_name                   Actor.ClientName (the MCP client)
//	actor.session.uid                Context.SessionID
//	actor.authorizations[]           {decision: Outcome.Status, policy: {name: Outcome.Rule,
//	                                 group: {name: Outcome.Origin}}} when Outcome.Rule is set
//	src_endpoint.ip                  Actor.Source (src_endpoint.name = Replica when no source)
//	api.operation                    Action
//	api.request.uid                  Context.RequestID (the JSON-RPC id)
//	api.request.data                 Args (as stored: see unmapped.masking)
//	api.response.code                Outcome.ErrorCode (JSON-RPC error code)
//	api.response.error_message       Outcome.Error
//	api.service.name                 Target.Server
//	resources[]                      {name: Target.Tool, type: "tool"}, {Target.Prompt, "prompt"},
//	                                 {Target.Resource, "resource"}; Target.Object "agent triage-bot"
//	                                 → {name: "triage-bot", type: "agent"} ("object" without a space)
//	metadata.uid                     ID
//	metadata.version                 "1.3.0"
//	metadata.product                 {name: "Gatehouse", vendor_name: "Gatehouse", version: ProductVersion}
//	metadata.sequence                Seq
//	metadata.correlation_uid         Context.CorrelationID
//	metadata.event_code              Kind
//	metadata.log_name                "audit"
//	unmapped.kind                    Kind
//	unmapped.outcome                 {status, rule, origin, reason, approval}
//	unmapped.hash, .prev_hash        Hash, PrevHash
//	unmapped.duration_ms,
//	  .upstream_ms                   DurationMS, UpstreamMS (exact)
//	unmapped.bytes_in, .bytes_out    BytesIn, BytesOut
//	unmapped.masking                 Masking (full, masked, hashed, omitted)
//	unmapped.result                  Result {bytes, content_types, is_error, items}
//	unmapped.replica                 Replica
//	unmapped.target                  {upstream: Target.Upstream, method: Target.Method, object: Target.Object}
//	unmapped.context.traceparent     Context.TraceParent (W3C)
//	unmapped.actor                   {kind: Actor.Kind, user: Actor.User (the human, also when an agent acts)}
//	unmapped.ai                      AI-operation extras: {agent: Actor.AgentName, agent_id,
//	                                 client: Actor.ClientName, client_version, delegation_chain: Actor.Chain,
//	                                 tool, prompt, resource, mcp_protocol: Context.Protocol,
//	                                 model: Context.Conversation's "model" when it is a JSON object
//	                                 with a string "model", conversation: Context.Conversation
//	                                 (up to 4 KiB; longer ones are left out, with conversation_bytes)}
func OCSF(r audit.Record) map[string]any {
	activity, activityName := ocsfActivity(r)
	severity := ocsfSeverity(r.Outcome.Status)
	status := ocsfStatus(r.Outcome)

	ev := map[string]any{
		"class_uid":     OCSFClassAPIActivity,
		"class_name":    ocsfClassName,
		"category_uid":  OCSFCategoryApplication,
		"category_name": ocsfCategoryName,
		"activity_id":   activity,
		"activity_name": activityName,
		"type_uid":      OCSFClassAPIActivity*100 + activity,
		"type_name":     ocsfClassName + ": " + activityName,
		"time":          r.Time.UnixMilli(),
		"severity_id":   severity,
		"severity":      ocsfSeverityNames[severity],
		"status_id":     status,
		"status":        ocsfStatusNames[status],
		"message":       ocsfMessage(r),
		"actor":         ocsfActor(r),
		"api":           ocsfAPI(r),
		"metadata":      ocsfMetadata(r),
		"unmapped":      ocsfUnmapped(r),
		"src_endpoint":  nil,
		"resources":     nil,
		"status_code":   r.Outcome.Status,
		"status_detail": r.Outcome.Reason,
		"duration":      int64(math.Round(r.DurationMS)),
	}
	src := map[string]any{}
	if r.Actor.Source != "" {
		src["ip"] = r.Actor.Source
	} else if r.Replica != "" {
		src["name"] = r.Replica
	}
	ev["src_endpoint"] = src
	ev["resources"] = ocsfResources(r.Target)
	return pruneOCSF(ev)
}

func ocsfActivity(r audit.Record) (int, string) {
	var id int
	if strings.HasPrefix(r.Kind, "mcp.") || r.Kind == "" {
		if r.Kind != audit.KindMCPNotification {
			id = ocsfMethodActivity[r.Action]
		}
	} else {
		verb := r.Action
		if i := strings.LastIndexByte(verb, '.'); i >= 0 {
			verb = verb[i+1:]
		}
		id = ocsfVerbActivity[verb]
	}
	if id == 0 {
		name := r.Action
		if name == "" {
			name = "Other"
		}
		return ocsfActivityOther, name
	}
	return id, ocsfActivityNames[id]
}

func ocsfSeverity(status string) int {
	switch status {
	case audit.OutcomeAllowed:
		return ocsfSeverityInformational
	case audit.OutcomeError, audit.OutcomePending:
		return ocsfSeverityLow
	case audit.OutcomeDenied, audit.OutcomeWouldDeny:
		return ocsfSeverityMedium
	}
	return ocsfSeverityUnknown
}

func ocsfStatus(o audit.Outcome) int {
	switch o.Status {
	case audit.OutcomeAllowed, audit.OutcomeWouldDeny:
		if o.ErrorCode != 0 || o.Error != "" {
			return ocsfStatusFailure
		}
		return ocsfStatusSuccess
	case audit.OutcomeDenied, audit.OutcomeError, audit.OutcomePending:
		return ocsfStatusFailure
	}
	return ocsfStatusUnknown
}

// ocsfTargetName is the name of what a record is about: tool, prompt,
// resource or object, in that order.
func ocsfTargetName(t audit.Target) (name, kind string) {
	switch {
	case t.Tool != "":
		return t.Tool, "tool"
	case t.Prompt != "":
		return t.Prompt, "prompt"
	case t.Resource != "":
		return t.Resource, "resource"
	case t.Object != "":
		return t.Object, "object"
	}
	return "", ""
}

func ocsfMessage(r audit.Record) string {
	var b strings.Builder
	b.WriteString(r.Action)
	if name, _ := ocsfTargetName(r.Target); name != "" {
		b.WriteByte(' ')
		if r.Target.Server != "" && r.Target.Object == "" {
			b.WriteString(r.Target.Server)
			b.WriteByte('/')
		}
		b.WriteString(name)
	}
	if r.Outcome.Status != "" {
		b.WriteString(": ")
		b.WriteString(r.Outcome.Status)
	}
	return b.String()
}

// ocsfActorName is actor.user.name: the agent's name for an agent, the
// user's for others, else the actor's ID, else its kind, else "unknown".
func ocsfActorName(a audit.Actor) string {
	name := a.User
	if a.Kind == "agent" {
		name = a.AgentName
	}
	for _, n := range []string{name, a.ID, a.Kind} {
		if n != "" {
			return n
		}
	}
	return "unknown"
}

func ocsfActor(r audit.Record) map[string]any {
	a := r.Actor
	user := map[string]any{"uid": a.ID, "name": ocsfActorName(a)}
	switch a.Kind {
	case "user":
		user["type"], user["type_id"] = "User", ocsfUserTypeUser
	case "admin":
		user["type"], user["type_id"] = "Admin", ocsfUserTypeAdmin
	case "system":
		user["type"], user["type_id"] = "System", ocsfUserTypeSystem
	case "agent":
		user["type"], user["type_id"] = "Agent", ocsfUserTypeOther
	case "anonymous", "":
		user["type"], user["type_id"] = "Unknown", ocsfUserTypeUnknown
	default:
		user["type"], user["type_id"] = a.Kind, ocsfUserTypeOther
	}
	if a.Team != "" {
		user["groups"] = []any{map[string]any{"name": a.Team}}
	}
	actor := map[string]any{
		"user":     user,
		"app_name": a.ClientName,
		"session":  map[string]any{"uid": r.Context.SessionID},
	}
	if r.Outcome.Rule != "" {
		actor["authorizations"] = []any{map[string]any{
			"decision": r.Outcome.Status,
			"policy": map[string]any{
				"name":  r.Outcome.Rule,
				"group": map[string]any{"name": r.Outcome.Origin},
			},
		}}
	}
	return actor
}

func ocsfAPI(r audit.Record) map[string]any {
	api := map[string]any{
		"operation": r.Action,
		"service":   map[string]any{"name": r.Target.Server},
		"request":   map[string]any{"uid": r.Context.RequestID, "data": rawOrNil(r.Args)},
		"response":  map[string]any{"code": r.Outcome.ErrorCode, "error_message": r.Outcome.Error},
	}
	return api
}

func ocsfResources(t audit.Target) []any {
	var out []any
	add := func(name, kind string) {
		if name != "" {
			out = append(out, map[string]any{"name": name, "type": kind})
		}
	}
	add(t.Tool, "tool")
	add(t.Prompt, "prompt")
	add(t.Resource, "resource")
	if t.Object != "" {
		kind, name, ok := strings.Cut(t.Object, " ")
		if !ok || kind == "" || name == "" {
			kind, name = "object", t.Object
		}
		add(name, kind)
	}
	return out
}

func ocsfMetadata(r audit.Record) map[string]any {
	return map[string]any{
		"uid":     r.ID,
		"version": OCSFVersion,
		"product": map[string]any{
			"name":        ocsfProductName,
			"vendor_name": ocsfVendorName,
			"version":     ProductVersion,
		},
		"sequence":        r.Seq,
		"correlation_uid": r.Context.CorrelationID,
		"event_code":      r.Kind,
		"log_name":        "audit",
	}
}

func ocsfUnmapped(r audit.Record) map[string]any {
	u := map[string]any{
		"kind": r.Kind,
		"outcome": map[string]any{
			"status":   r.Outcome.Status,
			"rule":     r.Outcome.Rule,
			"origin":   r.Outcome.Origin,
			"reason":   r.Outcome.Reason,
			"approval": r.Outcome.Approval,
		},
		"hash":        r.Hash,
		"prev_hash":   r.PrevHash,
		"duration_ms": r.DurationMS,
		"upstream_ms": r.UpstreamMS,
		"bytes_in":    r.BytesIn,
		"bytes_out":   r.BytesOut,
		"masking":     r.Masking,
		"replica":     r.Replica,
		"target": map[string]any{
			"upstream": r.Target.Upstream,
			"method":   r.Target.Method,
			"object":   r.Target.Object,
		},
		"context": map[string]any{
			"traceparent": r.Context.TraceParent,
		},
		"actor": map[string]any{
			"kind": r.Actor.Kind,
			"user": r.Actor.User,
		},
	}
	if res := r.Result; res != nil {
		u["result"] = map[string]any{
			"bytes":         res.Bytes,
			"content_types": stringsOrNil(res.ContentTypes),
			"is_error":      res.IsError,
			"items":         res.Items,
		}
	}
	ai := map[string]any{
		"agent":            r.Actor.AgentName,
		"agent_id":         r.Actor.AgentID,
		"client":           r.Actor.ClientName,
		"client_version":   r.Actor.ClientVersion,
		"delegation_chain": stringsOrNil(r.Actor.Chain),
		"tool":             r.Target.Tool,
		"prompt":           r.Target.Prompt,
		"resource":         r.Target.Resource,
		"mcp_protocol":     r.Context.Protocol,
	}
	if conv := r.Context.Conversation; len(conv) > 0 {
		var obj map[string]json.RawMessage
		if json.Unmarshal(conv, &obj) == nil {
			var model string
			if json.Unmarshal(obj["model"], &model) == nil {
				ai["model"] = model
			}
		}
		if len(conv) <= ocsfMaxInlineConversation && json.Valid(conv) {
			ai["conversation"] = conv
		} else {
			ai["conversation_bytes"] = len(conv)
		}
	}
	u["ai"] = ai
	return u
}

func rawOrNil(m json.RawMessage) any {
	if len(m) == 0 || !json.Valid(m) {
		return nil
	}
	return m
}

func stringsOrNil(s []string) any {
	if len(s) == 0 {
		return nil
	}
	return s
}

// pruneOCSF removes zero values (nil, "", 0, false, empty maps and
// lists) from an event, recursively, so absent record fields stay absent.
// The required OCSF attributes are set whatever the record.
func pruneOCSF(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			if len(pruneOCSF(x)) == 0 {
				delete(m, k)
			}
		case []any:
			kept := x[:0]
			for _, e := range x {
				if em, ok := e.(map[string]any); ok && len(pruneOCSF(em)) == 0 {
					continue
				}
				kept = append(kept, e)
			}
			if len(kept) == 0 {
				delete(m, k)
			} else {
				m[k] = kept
			}
		case nil:
			delete(m, k)
		case string:
			if x == "" {
				delete(m, k)
			}
		case int:
			if x == 0 && !ocsfKeepZero[k] {
				delete(m, k)
			}
		case int64:
			if x == 0 && !ocsfKeepZero[k] {
				delete(m, k)
			}
		case float64:
			if x == 0 {
				delete(m, k)
			}
		case bool:
			if !x {
				delete(m, k)
			}
		}
	}
	return m
}

// ocsfKeepZero are the numeric attributes whose zero is meaningful.
var ocsfKeepZero = map[string]bool{
	"severity_id": true, "status_id": true, "type_id": true, "time": true,
	"sequence": true, "activity_id": true,
}

package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Ticket is a support ticket. CustomerID refers to the CRM demo's customers.
type Ticket struct {
	ID         string `json:"id"`
	Queue      string `json:"queue" jsonschema:"billing, technical or onboarding"`
	Status     string `json:"status" jsonschema:"open, pending or resolved"`
	Priority   string `json:"priority" jsonschema:"low, normal, high or urgent"`
	Subject    string `json:"subject"`
	Body       string `json:"body"`
	CustomerID string `json:"customer_id,omitempty"`
	CreatedAt  string `json:"created_at" jsonschema:"RFC 3339 timestamp"`
}

// TicketSummary is a ticket without its body, as listed by list_tickets.
type TicketSummary struct {
	ID         string `json:"id"`
	Queue      string `json:"queue"`
	Status     string `json:"status"`
	Priority   string `json:"priority"`
	Subject    string `json:"subject"`
	CustomerID string `json:"customer_id,omitempty"`
}

// The allowed field values are returned by functions, not held in package
// variables, so no caller can change them for everyone.
func ticketQueues() []string     { return []string{"billing", "technical", "onboarding"} }
func ticketStatuses() []string   { return []string{"open", "pending", "resolved"} }
func ticketPriorities() []string { return []string{"low", "normal", "high", "urgent"} }

const (
	// maxTickets bounds memory when a benchmark or a runaway agent keeps
	// creating tickets against a long-lived demo server.
	maxTickets       = 100_000
	maxSubjectLength = 200
	maxBodyLength    = 8 << 10
)

// tickets is the ticket queue demo. Tickets can be created at runtime, so
// the slice is guarded by mu.
type tickets struct {
	now         func() time.Time
	customerIDs map[string]bool

	mu      sync.Mutex
	tickets []Ticket
	nextID  int
}

func newTickets() *tickets {
	t := &tickets{now: time.Now, customerIDs: map[string]bool{}, tickets: seedTickets()}
	for _, cu := range seedCustomers() {
		t.customerIDs[cu.ID] = true
	}
	t.nextID = 5001 + len(t.tickets)
	return t
}

func (*tickets) title() string { return "Gatehouse demo ticket desk" }

func (*tickets) instructions() string {
	return "Demo support ticket desk for Gatehouse. Queues: " + strings.Join(ticketQueues(), ", ") +
		". Use list_tickets to browse, get_ticket for the full body and create_ticket to open a new one. " +
		"Customer ids (CUST-1001…) match the demo CRM. All data is fictional."
}

// ListTicketsInput is the input of list_tickets.
type ListTicketsInput struct {
	Queue  string `json:"queue,omitempty" jsonschema:"only tickets in this queue: billing, technical or onboarding"`
	Status string `json:"status,omitempty" jsonschema:"only tickets with this status: open, pending or resolved"`
}

// ListTicketsOutput is the structured result of list_tickets.
type ListTicketsOutput struct {
	Tickets []TicketSummary `json:"tickets"`
	Count   int             `json:"count"`
}

// CreateTicketInput is the input of create_ticket.
type CreateTicketInput struct {
	Queue      string `json:"queue" jsonschema:"queue to file the ticket in: billing, technical or onboarding"`
	Subject    string `json:"subject" jsonschema:"one-line summary"`
	Body       string `json:"body" jsonschema:"full description of the problem or request"`
	Priority   string `json:"priority,omitempty" jsonschema:"low, normal, high or urgent (default normal)"`
	CustomerID string `json:"customer_id,omitempty" jsonschema:"CRM customer id the ticket is about, e.g. CUST-1001"`
}

func (t *tickets) register(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{
		Name:        "list_tickets",
		Title:       "List tickets",
		Description: "List support tickets (without bodies), optionally filtered by queue (billing, technical, onboarding) and/or status (open, pending, resolved).",
		Annotations: readOnly("List tickets"),
	}, t.listTickets)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "get_ticket",
		Title:       "Get ticket",
		Description: "Fetch one support ticket by id (e.g. TCK-5001), including its full body.",
		Annotations: readOnly("Get ticket"),
	}, t.getTicket)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "create_ticket",
		Title:       "Create ticket",
		Description: "Open a new support ticket in a queue (billing, technical or onboarding). Returns the created ticket with its new id. Each call creates a new ticket.",
		Annotations: &mcp.ToolAnnotations{
			Title:           "Create ticket",
			ReadOnlyHint:    false,
			DestructiveHint: new(false), // only adds tickets, never changes or deletes existing ones
			IdempotentHint:  false,      // repeating the call files a duplicate
			OpenWorldHint:   new(false), // the ticket desk is this server's own state
		},
	}, t.createTicket)
}

func (t *tickets) listTickets(_ context.Context, _ *mcp.CallToolRequest, in ListTicketsInput) (*mcp.CallToolResult, ListTicketsOutput, error) {
	queue, status := strings.ToLower(strings.TrimSpace(in.Queue)), strings.ToLower(strings.TrimSpace(in.Status))
	if queue != "" {
		if err := oneOf("queue", queue, ticketQueues()); err != nil {
			return nil, ListTicketsOutput{}, err
		}
	}
	if status != "" {
		if err := oneOf("status", status, ticketStatuses()); err != nil {
			return nil, ListTicketsOutput{}, err
		}
	}

	out := ListTicketsOutput{Tickets: []TicketSummary{}}
	t.mu.Lock()
	for _, tk := range t.tickets {
		if (queue == "" || tk.Queue == queue) && (status == "" || tk.Status == status) {
			out.Tickets = append(out.Tickets, TicketSummary{
				ID: tk.ID, Queue: tk.Queue, Status: tk.Status, Priority: tk.Priority,
				Subject: tk.Subject, CustomerID: tk.CustomerID,
			})
		}
	}
	t.mu.Unlock()
	out.Count = len(out.Tickets)

	var b strings.Builder
	fmt.Fprintf(&b, "%d ticket(s)", out.Count)
	if queue != "" {
		fmt.Fprintf(&b, " in queue %s", queue)
	}
	if status != "" {
		fmt.Fprintf(&b, " with status %s", status)
	}
	b.WriteString(":")
	for _, tk := range out.Tickets {
		fmt.Fprintf(&b, "\n- %s [%s/%s/%s] %s", tk.ID, tk.Queue, tk.Status, tk.Priority, tk.Subject)
		if tk.CustomerID != "" {
			fmt.Fprintf(&b, " (%s)", tk.CustomerID)
		}
	}
	return textResult("%s", b.String()), out, nil
}

func (t *tickets) getTicket(_ context.Context, _ *mcp.CallToolRequest, in IDInput) (*mcp.CallToolResult, *Ticket, error) {
	id := normID(in.ID)
	t.mu.Lock()
	var found *Ticket
	for _, tk := range t.tickets {
		if tk.ID == id {
			found = &tk // a copy, so the caller never aliases guarded state
			break
		}
	}
	t.mu.Unlock()
	if found == nil {
		return nil, nil, fmt.Errorf("ticket %q not found; ids look like TCK-5001 (try list_tickets)", in.ID)
	}
	return textResult("%s", formatTicket(found)), found, nil
}

func formatTicket(tk *Ticket) string {
	customer := "none"
	if tk.CustomerID != "" {
		customer = tk.CustomerID
	}
	return fmt.Sprintf("%s: %s\nQueue: %s\nStatus: %s\nPriority: %s\nCustomer: %s\nCreated: %s\n\n%s",
		tk.ID, tk.Subject, tk.Queue, tk.Status, tk.Priority, customer, tk.CreatedAt, tk.Body)
}

func (t *tickets) createTicket(_ context.Context, _ *mcp.CallToolRequest, in CreateTicketInput) (*mcp.CallToolResult, *Ticket, error) {
	tk := Ticket{
		Queue:      strings.ToLower(strings.TrimSpace(in.Queue)),
		Status:     "open",
		Priority:   strings.ToLower(strings.TrimSpace(in.Priority)),
		Subject:    strings.TrimSpace(in.Subject),
		Body:       strings.TrimSpace(in.Body),
		CustomerID: normID(in.CustomerID),
		CreatedAt:  t.now().UTC().Format(time.RFC3339),
	}
	if tk.Priority == "" {
		tk.Priority = "normal"
	}
	if err := t.validate(&tk); err != nil {
		return nil, nil, fmt.Errorf("create_ticket: %w", err)
	}

	t.mu.Lock()
	if len(t.tickets) >= maxTickets {
		t.mu.Unlock()
		return nil, nil, fmt.Errorf("create_ticket: the demo ticket desk is full (%d tickets); restart the demo server", maxTickets)
	}
	tk.ID = fmt.Sprintf("TCK-%d", t.nextID)
	t.nextID++
	t.tickets = append(t.tickets, tk)
	t.mu.Unlock()

	return textResult("Created ticket %s in queue %s.\n\n%s", tk.ID, tk.Queue, formatTicket(&tk)), &tk, nil
}

func (t *tickets) validate(tk *Ticket) error {
	var errs []error
	if err := oneOf("queue", tk.Queue, ticketQueues()); err != nil {
		errs = append(errs, err)
	}
	if err := oneOf("priority", tk.Priority, ticketPriorities()); err != nil {
		errs = append(errs, err)
	}
	switch n := len(tk.Subject); {
	case n == 0:
		errs = append(errs, errors.New("subject must not be empty"))
	case n > maxSubjectLength:
		errs = append(errs, fmt.Errorf("subject is %d bytes, limit %d", n, maxSubjectLength))
	}
	switch n := len(tk.Body); {
	case n == 0:
		errs = append(errs, errors.New("body must not be empty"))
	case n > maxBodyLength:
		errs = append(errs, fmt.Errorf("body is %d bytes, limit %d", n, maxBodyLength))
	}
	if tk.CustomerID != "" && !t.customerIDs[tk.CustomerID] {
		errs = append(errs, fmt.Errorf("unknown customer_id %q", tk.CustomerID))
	}
	return errors.Join(errs...)
}

func seedTickets() []Ticket {
	return []Ticket{
		{ID: "TCK-5001", Queue: "billing", Status: "open", Priority: "high", CustomerID: "CUST-1004", CreatedAt: "2024-03-04T09:12:00Z",
			Subject: "INV-24004 marked overdue but already paid",
			Body:    "Hi team, our accounts payable team (billing@brightwaterhealth.example) paid INV-24004 by bank transfer on 2 February, reference BWH-88213. Please reconcile it and remove the late fee. Thanks, Olusegun"},
		{ID: "TCK-5002", Queue: "technical", Status: "open", Priority: "urgent", CustomerID: "CUST-1008", CreatedAt: "2024-03-05T02:47:00Z",
			Subject: "Telemetry ingestion lagging 20+ minutes",
			Body:    "Since 01:30 UTC robot telemetry shows up 20-25 minutes late on the dashboard. Affects all three Osaka sites. Our on-call engineer is kenji.watanabe@kitsune-robotics.example."},
		{ID: "TCK-5003", Queue: "onboarding", Status: "pending", Priority: "normal", CustomerID: "CUST-1005", CreatedAt: "2024-03-05T13:30:00Z",
			Subject: "Schedule storefront connector workshop",
			Body:    "We would like the onboarding workshop in the week of 18 March, mornings CET. Please send the invite to sophie.laurent@maisonverte.example and our IT lead."},
		{ID: "TCK-5004", Queue: "technical", Status: "resolved", Priority: "normal", CustomerID: "CUST-1001", CreatedAt: "2024-03-06T16:05:00Z",
			Subject: "SSO login loop in the drivers app",
			Body:    "Drivers on Android 14 get bounced back to the login page after SSO. Reproduced on app version 5.2.1. Fixed by clearing the stale IdP metadata on our side."},
		{ID: "TCK-5005", Queue: "billing", Status: "pending", Priority: "normal", CustomerID: "CUST-1007", CreatedAt: "2024-03-07T11:20:00Z",
			Subject: "Change billing contact",
			Body:    "Please send all future invoices to financeiro@ventosul.example instead of Ana's address, and let us know how to settle INV-24007."},
		{ID: "TCK-5006", Queue: "onboarding", Status: "open", Priority: "low", CustomerID: "CUST-1010", CreatedAt: "2024-03-08T08:00:00Z",
			Subject: "Add two more vessel trackers",
			Body:    "We are adding two vessels to the Bergen route next month and need trackers provisioned before 1 April."},
		{ID: "TCK-5007", Queue: "technical", Status: "pending", Priority: "high", CustomerID: "CUST-1002", CreatedAt: "2024-03-08T15:42:00Z",
			Subject: "EDI connector rejects ASN messages",
			Body:    "About 8% of advance shipping notices fail with 'segment BSN missing'. Sample files attached in the portal. Waiting on Northwind's EDI vendor to confirm the spec version."},
		{ID: "TCK-5008", Queue: "billing", Status: "resolved", Priority: "low", CustomerID: "CUST-1006", CreatedAt: "2024-03-11T10:10:00Z",
			Subject: "Need W-9 for vendor setup",
			Body:    "Our procurement needs your W-9 before they can pay INV-24006. Please email it to jack.odonnell@copperline.example."},
		{ID: "TCK-5009", Queue: "technical", Status: "open", Priority: "normal", CustomerID: "CUST-1009", CreatedAt: "2024-03-12T17:25:00Z",
			Subject: "PDF export truncates matter notes",
			Body:    "Exporting a matter to PDF cuts notes off after roughly two pages. Happens in Chrome and Edge."},
		{ID: "TCK-5010", Queue: "onboarding", Status: "resolved", Priority: "normal", CustomerID: "CUST-1003", CreatedAt: "2024-03-13T04:55:00Z",
			Subject: "Invite additional analysts",
			Body:    "Please invite j.wong@harborpine.example and r.patel@harborpine.example to the analytics workspace with editor rights."},
		{ID: "TCK-5011", Queue: "billing", Status: "open", Priority: "normal", CustomerID: "CUST-1001", CreatedAt: "2024-03-15T12:00:00Z",
			Subject: "PO number missing on INV-24010",
			Body:    "Our AP system rejects INV-24010 because the PO number is missing. The PO is 4500-778812. Please reissue to ap@acmelogistics.example."},
	}
}

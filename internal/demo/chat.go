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

// Channel is a team chat channel. External channels are shared with people
// outside the company (here, a customer), which is what outbound-data
// policies key on.
type Channel struct {
	Name         string `json:"name"`
	Topic        string `json:"topic"`
	External     bool   `json:"external" jsonschema:"true if people outside the company can read this channel"`
	SharedWith   string `json:"shared_with,omitempty" jsonschema:"for external channels, the organisation it is shared with"`
	MessageCount int    `json:"message_count"`
}

// Message is one chat message.
type Message struct {
	ID       string `json:"id"`
	Channel  string `json:"channel"`
	Author   string `json:"author"`
	Text     string `json:"text"`
	PostedAt string `json:"posted_at" jsonschema:"RFC 3339 timestamp"`
}

// PostMessageOutput is the structured result of post_message.
type PostMessageOutput struct {
	Message  Message `json:"message"`
	External bool    `json:"external" jsonschema:"true if the message went to a channel shared outside the company"`
}

// ListChannelsOutput is the structured result of list_channels.
type ListChannelsOutput struct {
	Channels []Channel `json:"channels"`
}

const (
	// chatAuthor is who post_message posts as: the agent behind the gateway.
	chatAuthor     = "gatehouse-agent"
	maxTextLength  = 4000
	maxChatHistory = 100_000
)

// chat is the team chat demo. Messages can be posted at runtime, so the
// message log is guarded by mu. Channels are fixed.
type chat struct {
	now      func() time.Time
	channels []Channel // MessageCount is computed on read, not stored

	mu       sync.Mutex
	messages []Message
	nextID   int
}

func newChat() *chat {
	c := &chat{now: time.Now, channels: seedChannels(), messages: seedMessages()}
	c.nextID = len(c.messages) + 1
	return c
}

func (*chat) title() string { return "Gatehouse demo team chat" }

func (*chat) instructions() string {
	return "Demo team chat for Gatehouse. list_channels shows channels and which are external " +
		"(shared with a customer); post_message posts to a channel. All data is fictional."
}

// PostMessageInput is the input of post_message.
type PostMessageInput struct {
	Channel string `json:"channel" jsonschema:"channel name, e.g. #support (the leading # is optional)"`
	Text    string `json:"text" jsonschema:"message text (plain text, up to 4000 characters)"`
}

func (c *chat) register(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{
		Name:        "list_channels",
		Title:       "List channels",
		Description: "List chat channels with their topic, message count and whether they are external (shared with a customer).",
		Annotations: readOnly("List channels"),
	}, c.listChannels)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "post_message",
		Title:       "Post message",
		Description: "Post a message to a chat channel as " + chatAuthor + ". Messages to external channels are visible to the customer the channel is shared with.",
		Annotations: &mcp.ToolAnnotations{
			Title:           "Post message",
			ReadOnlyHint:    false,
			DestructiveHint: new(false), // appends a message, never edits or deletes
			IdempotentHint:  false,      // repeating the call posts twice
			OpenWorldHint:   new(true),  // messages reach people, some outside the company
		},
	}, c.postMessage)
}

func (c *chat) listChannels(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, ListChannelsOutput, error) {
	counts := map[string]int{}
	c.mu.Lock()
	for _, m := range c.messages {
		counts[m.Channel]++
	}
	c.mu.Unlock()

	out := ListChannelsOutput{Channels: make([]Channel, 0, len(c.channels))}
	var b strings.Builder
	fmt.Fprintf(&b, "%d channels:", len(c.channels))
	for _, ch := range c.channels {
		ch.MessageCount = counts[ch.Name]
		out.Channels = append(out.Channels, ch)
		fmt.Fprintf(&b, "\n- %s (%d messages): %s", ch.Name, ch.MessageCount, ch.Topic)
		if ch.External {
			fmt.Fprintf(&b, " [EXTERNAL, shared with %s]", ch.SharedWith)
		}
	}
	return textResult("%s", b.String()), out, nil
}

func (c *chat) channel(name string) *Channel {
	name = strings.ToLower(strings.TrimSpace(name))
	if !strings.HasPrefix(name, "#") {
		name = "#" + name
	}
	for i := range c.channels {
		if c.channels[i].Name == name {
			return &c.channels[i]
		}
	}
	return nil
}

func (c *chat) postMessage(_ context.Context, _ *mcp.CallToolRequest, in PostMessageInput) (*mcp.CallToolResult, *PostMessageOutput, error) {
	ch := c.channel(in.Channel)
	if ch == nil {
		names := make([]string, len(c.channels))
		for i, ch := range c.channels {
			names[i] = ch.Name
		}
		return nil, nil, fmt.Errorf("post_message: unknown channel %q: want one of %s", in.Channel, strings.Join(names, ", "))
	}
	text := strings.TrimSpace(in.Text)
	switch {
	case text == "":
		return nil, nil, errors.New("post_message: text must not be empty")
	case len(text) > maxTextLength:
		return nil, nil, fmt.Errorf("post_message: text is %d bytes, limit %d", len(text), maxTextLength)
	}

	m := Message{Channel: ch.Name, Author: chatAuthor, Text: text, PostedAt: c.now().UTC().Format(time.RFC3339)}
	c.mu.Lock()
	// Cap the log so a benchmark cannot grow a long-lived demo server without bound.
	if len(c.messages) >= maxChatHistory {
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("post_message: the demo chat is full (%d messages); restart the demo server", maxChatHistory)
	}
	m.ID = fmt.Sprintf("MSG-%04d", c.nextID)
	c.nextID++
	c.messages = append(c.messages, m)
	c.mu.Unlock()

	out := &PostMessageOutput{Message: m, External: ch.External}
	note := ""
	if ch.External {
		note = fmt.Sprintf(" Note: %s is an external channel shared with %s.", ch.Name, ch.SharedWith)
	}
	return textResult("Posted %s to %s as %s.%s", m.ID, m.Channel, m.Author, note), out, nil
}

func seedChannels() []Channel {
	return []Channel{
		{Name: "#general", Topic: "Company-wide announcements"},
		{Name: "#sales", Topic: "Pipeline, deals and renewals"},
		{Name: "#support", Topic: "Customer support coordination and escalations"},
		{Name: "#eng-oncall", Topic: "Production incidents and on-call handoffs"},
		{Name: "#ext-northwind", Topic: "Shared channel with Northwind Traders (CUST-1002)", External: true, SharedWith: "Northwind Traders"},
	}
}

func seedMessages() []Message {
	return []Message{
		{ID: "MSG-0001", Channel: "#general", Author: "elena.petrova", PostedAt: "2024-03-04T08:30:00Z", Text: "Reminder: quarterly all-hands is Thursday at 16:00 CET."},
		{ID: "MSG-0002", Channel: "#sales", Author: "dana.whitfield", PostedAt: "2024-03-04T14:02:00Z", Text: "Acme Logistics (CUST-1001) wants 45 more fleet seats plus route optimisation. Draft quote is in the CRM."},
		{ID: "MSG-0003", Channel: "#support", Author: "sam.okafor", PostedAt: "2024-03-04T09:20:00Z", Text: "TCK-5001: Brightwater says INV-24004 was paid by transfer. Can billing check before we chase them again?"},
		{ID: "MSG-0004", Channel: "#eng-oncall", Author: "li.na", PostedAt: "2024-03-05T02:55:00Z", Text: "Paging: telemetry ingestion lag for Kitsune Robotics (TCK-5002). Kafka consumer group ingest-apac is behind by ~1.2M messages."},
		{ID: "MSG-0005", Channel: "#eng-oncall", Author: "li.na", PostedAt: "2024-03-05T03:40:00Z", Text: "Mitigated: scaled ingest-apac from 6 to 12 consumers, lag recovering. Postmortem owner: me."},
		{ID: "MSG-0006", Channel: "#ext-northwind", Author: "tomas.herrera", PostedAt: "2024-03-08T15:50:00Z", Text: "Hi all, our EDI vendor confirmed they send ASN in 4010 format. Does that help with TCK-5007?"},
		{ID: "MSG-0007", Channel: "#ext-northwind", Author: "elena.petrova", PostedAt: "2024-03-08T16:05:00Z", Text: "Thanks Tomás, passing this to engineering now. We'll update the ticket by tomorrow."},
		{ID: "MSG-0008", Channel: "#support", Author: "marcus.bell", PostedAt: "2024-03-07T11:45:00Z", Text: "Vento Sul (CUST-1007) asked to move invoices to their finance mailbox, see TCK-5005."},
		{ID: "MSG-0009", Channel: "#sales", Author: "aiko.tanaka", PostedAt: "2024-03-12T06:10:00Z", Text: "Kitsune renewal looks safe despite the ingestion incident; they appreciated the fast response."},
		{ID: "MSG-0010", Channel: "#general", Author: "marcus.bell", PostedAt: "2024-03-13T09:00:00Z", Text: "Welcome to our new support engineer, Sam Okafor!"},
	}
}

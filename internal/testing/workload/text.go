package workload

// Agent is one Copilot Studio agent: its display name (cloud_RoleInstance,
// recipientName), the schema prefix its topic names carry, the channels it is
// published to (weighted by repetition) and what its users ask about.
type Agent struct {
	Name     string
	Schema   string // e.g. cr44e_HRAgent: prefix of fully qualified topic names
	Channels []string
	Topics   []string // topic short names; the questions below are asked of them
	Asks     []string // question templates; %s is filled with a subject
	Subjects []string
}

// DefaultAgents are the agents a generated workload talks to. Names carry
// spaces, an ampersand and an accent so that sanitising them for Akto's host
// and bot-name is exercised.
var DefaultAgents = []Agent{
	{
		Name:     "HR Agent",
		Schema:   "cr44e_HRAgent",
		Channels: []string{"msteams", "msteams", "msteams", "m365extensions", "pva-studio"},
		Topics:   []string{"LeaveBalance", "Payroll", "Benefits", "Onboarding"},
		Asks: []string{
			"How many days of %s do I have left?",
			"Where can I find my %s?",
			"Who approves %s requests in my team?",
			"Can you explain the new %s policy?",
			"I need help with %s, it says \"pending\" since Monday",
		},
		Subjects: []string{"annual leave", "payslip", "parental leave", "health insurance", "relocation allowance", "sick leave", "Überstunden"},
	},
	{
		Name:     "IT Helpdesk",
		Schema:   "cr7a1_ITHelpdesk",
		Channels: []string{"msteams", "msteams", "webchat", "directline", "pva-studio"},
		Topics:   []string{"ResetPassword", "VPN", "Laptop", "SoftwareRequest"},
		Asks: []string{
			"My %s is not working since this morning",
			"How do I set up %s on a new laptop?",
			"Can I get access to %s?",
			"%s keeps asking me to sign in again",
			"Is there an outage on %s right now?",
		},
		Subjects: []string{"VPN", "Outlook", "the printer on floor 3", "Teams", "multi-factor authentication", "SharePoint", "Visual Studio"},
	},
	{
		Name:     "Contoso Travel & Expenses",
		Schema:   "crb3d_ContosoTravel",
		Channels: []string{"webchat", "webchat", "directline", "msteams", "pva-studio"},
		Topics:   []string{"BookTrip", "ExpenseClaim", "PerDiem", "TravelPolicy"},
		Asks: []string{
			"What is the per diem for %s?",
			"Can I book a flight to %s next week?",
			"Is a hotel in %s above the limit at 240 EUR a night?",
			"How do I claim expenses for my trip to %s?",
			"Do I need approval before travelling to %s?",
		},
		Subjects: []string{"London", "São Paulo", "Tokyo", "München", "New York", "Zürich", "東京"},
	},
	{
		Name:     "Café Orders Bot",
		Schema:   "cr9f2_CafeOrders",
		Channels: []string{"webchat", "directline", "directline", "m365extensions"},
		Topics:   []string{"Order", "Menu", "Allergens", "OpeningHours"},
		Asks: []string{
			"Can I order a %s for pickup at 12:30?",
			"Does the %s contain nuts?",
			"How much is a %s today?",
			"Is there a vegan %s? 🌱",
		},
		Subjects: []string{"flat white", "croissant", "club sandwich", "matcha latte", "lunch box", "crème brûlée"},
	},
	{
		Name:     "Sales Coach",
		Schema:   "cr0c4_SalesCoach",
		Channels: []string{"msteams", "m365extensions", "pva-studio"},
		Topics:   []string{"Pipeline", "Pricing", "Competitors", "Forecast"},
		Asks: []string{
			"Summarise my %s for this quarter",
			"What discount can I give on %s?",
			"How do we position against %s?",
			"Draft an email about %s to the customer",
		},
		Subjects: []string{"the Fabrikam deal", "enterprise licences", "Northwind", "the renewal pipeline", "Q3 forecast"},
	},
}

// Reply sentences, joined two or three at a time into an answer.
var answerSentences = []string{
	"Here is what I found in the policy documents.",
	"You can do this yourself in the self-service portal under My Requests.",
	"Your manager has to approve it first; you will get an email once they have.",
	"The current limit is set by your country's policy, see the table below.",
	"I have created a ticket for you, the reference is in the card.",
	"This usually takes one to two working days.",
	"If it still does not work, restart the application and try again.",
	"According to the handbook (section 4.2), the answer is yes, with conditions.",
	"I could not find anything about that in the knowledge sources.",
	"Would you like me to connect you with a person from the team?",
	"Note: prices include VAT but not the service charge.",
	"Let me know if there is anything else I can help with.",
}

var summaryLeads = []string{"In short: ", "Summary: ", "TL;DR ", "To sum up, "}

var greetings = []string{
	"Hello, I'm %s, a virtual assistant. Just so you are aware, I sometimes use AI to answer your questions.",
	"Hi! I'm %s. How can I help you today?",
	"Welcome back! %s here. Ask me anything.",
}

var greetingFollowUps = []string{
	"You can ask me about policies, requests and where to find things.",
	"Tip: type \"start over\" at any time to begin again.",
}

var errorReplies = []string{
	"Sorry, something unexpected happened. We're looking into it. Error code: %s. Conversation Id: %s. Time (UTC): %s.",
	"An error has occurred. Error code: %s. Conversation Id: %s. Time (UTC): %s.",
}

var errorCodes = []string{"FlowActionException", "ConnectorRequestFailure", "SystemError", "ContentFiltered", "OpenAIRateLimitReached"}

var firstNames = []string{"Jane", "Ahmed", "Li", "María", "Oluwaseun", "Søren", "Priya", "Tom", "Yuki", "Zoë"}
var lastNames = []string{"Doe", "Haddad", "Wei", "García", "Adeyemi", "Kierkegaard", "Raman", "Smith", "Tanaka", "Müller"}

var locales = []string{"en-US", "en-US", "en-GB", "de-DE", "fr-FR", "ja-JP", "pt-BR"}

var actionKinds = []string{"SendActivity", "SendActivity", "InvokeFlowAction", "InvokeConnectorAction", "HttpRequest", "SetVariable", "ConditionGroup"}

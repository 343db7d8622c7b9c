package embedded

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/breakwater-dev/breakwater/host/topology"
)

// The runtime's own identities on the embedded server. Their passwords are
// random per process; names starting with '_' are refused for configured
// users.
const (
	// UserAdmin creates streams, buckets and consumers: setup only.
	UserAdmin = "_bw_admin"
	// UserWorker processes messages: least privilege (WorkerPermissions).
	UserWorker = "_bw_worker"
	// UserReplies publishes outcomes to producers' reply subjects, and
	// nothing else (RepliesPermissions).
	UserReplies = "_bw_replies"
	// UserAnonymous is who a client without credentials is when no users
	// are configured: every right, as on a server without authentication.
	UserAnonymous = "_bw_anonymous"
)

// PermissionOptions are what the runtime's permissions depend on.
type PermissionOptions struct {
	// InboxPrefix is the runtime's private inbox prefix (nats.inbox_prefix).
	InboxPrefix string
	// ReplySubjects are the reply namespaces: topology.ReplyNamespaces and
	// every route's reply_subjects.
	ReplySubjects []string
	// TargetSubjects are the subjects of the routes' NATS targets.
	TargetSubjects []string
}

// WorkerPermissions are the rights of the connection that processes
// messages: pull and ack work on BW_IN, publish outcomes and dead letters,
// read and write last-known-good values and attempt histories, read flags
// and modules, record decisions, withdraw a canary module version,
// receive bw.call requests and call NATS targets. It has no
// JetStream admin rights (no stream create, update, purge or delete, no
// consumer on BW_IN created or deleted) and cannot write flags or modules.
func WorkerPermissions(o PermissionOptions) *server.Permissions {
	pub := []string{
		"$JS.API.INFO",
		// Streams and buckets it binds to (info only).
		"$JS.API.STREAM.INFO." + topology.StreamIn,
		"$JS.API.STREAM.INFO." + topology.StreamOut,
		"$JS.API.STREAM.INFO." + topology.StreamDLQ,
		"$JS.API.STREAM.INFO." + topology.StreamDLQData,
		"$JS.API.STREAM.INFO.KV_" + topology.BucketCache,
		"$JS.API.STREAM.INFO.KV_" + topology.BucketAttempts,
		"$JS.API.STREAM.INFO.KV_" + topology.BucketFlags,
		"$JS.API.STREAM.INFO.KV_" + topology.BucketRoutes,
		"$JS.API.STREAM.INFO.OBJ_" + topology.BucketModules,
		"$JS.API.STREAM.INFO.KV_" + topology.BucketModules + "_meta",
		// Work: pull, ack, nak, in-progress on the route consumers.
		"$JS.API.CONSUMER.INFO." + topology.StreamIn + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + topology.StreamIn + ".*",
		"$JS.ACK." + topology.StreamIn + ".>",
		// Outcomes, dead letters, and reading a claimed outcome back.
		topology.OutPrefix + ">",
		topology.DLQPrefix + ">",
		topology.DLQDataPrefix + ">",
		"$JS.API.DIRECT.GET." + topology.StreamOut,
		"$JS.API.DIRECT.GET." + topology.StreamOut + ".>",
		"$JS.API.STREAM.MSG.GET." + topology.StreamOut,
		// Last-known-good values and attempt histories: read and write.
		"$KV." + topology.BucketCache + ".>",
		"$KV." + topology.BucketAttempts + ".>",
		"$JS.API.DIRECT.GET.KV_" + topology.BucketCache + ".>",
		"$JS.API.DIRECT.GET.KV_" + topology.BucketAttempts + ".>",
		"$JS.API.STREAM.MSG.GET.KV_" + topology.BucketCache,
		"$JS.API.STREAM.MSG.GET.KV_" + topology.BucketAttempts,
	}
	// Decision records (core publishes into BW_DECISIONS), and the one
	// module key a worker writes: the withdrawal of a canary it saw
	// breach, which can only take a version out of service.
	pub = append(pub, topology.DecisionsPrefix+">", "$KV."+topology.BucketModules+"_meta.withdrawn.>")
	// Flags and modules: read and watch (ordered consumers).
	for _, s := range []string{"KV_" + topology.BucketFlags, "KV_" + topology.BucketRoutes, "OBJ_" + topology.BucketModules, "KV_" + topology.BucketModules + "_meta"} {
		pub = append(pub,
			"$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.DELETE."+s+".>",
			"$JS.FC."+s+".>")
	}
	pub = append(pub, o.TargetSubjects...)
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{
			o.InboxPrefix + ".>",
			topology.CallPrefix + ">",
		}},
		// No allow_responses: it would let a requester point the worker's
		// answer at any subject. Sync replies go out on the replies
		// connection, inside the reply namespaces.
	}
}

// RepliesPermissions are the rights of the connection that publishes
// outcomes to producers' reply subjects (Bw-Reply-To, and the reply
// subjects of bw.call requests): those namespaces and nothing else, so a reply subject that got past validation still
// cannot reach a stream, a bucket or the JetStream API.
func RepliesPermissions(o PermissionOptions) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: append([]string(nil), o.ReplySubjects...)},
		Subscribe: &server.SubjectPermission{Deny: []string{">"}},
	}
}

// ProducerPermissions are a producer's rights: publish work on its routes
// (every route when routes is empty) and receive replies on its own inbox
// prefix _INBOX.<user> (set it with nats.CustomInboxPrefix), and nothing
// else: no JetStream API, no flags or modules, no one else's replies.
func ProducerPermissions(user string, routes []string) *server.Permissions {
	pub := []string{topology.InPrefix + ">", topology.CallPrefix + ">"}
	if len(routes) > 0 {
		pub = pub[:0]
		for _, r := range routes {
			pub = append(pub, topology.In(r), topology.Call(r))
		}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{ProducerInboxPrefix(user) + ".>"}},
	}
}

// ProducerInboxPrefix is the inbox prefix a producer's client must use.
func ProducerInboxPrefix(user string) string { return "_INBOX." + user }

"""moto's S3 in server mode with authentication enforced: real keys, every request's signature checked.

moto checks nothing by default. Here an IAM user and its access key are made first, then moto is told to
authenticate every request from then on (its `INITIAL_NO_AUTH_ACTION_COUNT` set to 0 through
`/moto-api/reset-auth`): a header-signed request with a wrong secret or an unknown key is refused by moto itself.

moto cannot check a presigned (query-signed) URL with authentication on: it answers 500 to every one, good or
bad, and it never reads `X-Amz-Expires`. So a thin layer in front of it checks those as S3 does — the SigV4
query signature recomputed with botocore from the key's secret, and the expiry from `X-Amz-Date` +
`X-Amz-Expires` — and answers 403 `SignatureDoesNotMatch` / `AccessDenied` (expired); a URL that passes is
sent on to moto signed in the header with the same key, so moto still checks the key and its permissions.
"""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

import boto3
import requests
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.serving import make_server

REGION = "us-east-1"
_SIGNATURE = "X-Amz-Signature"


def _aws_query(pairs) -> str:
    """A query string encoded as SigV4 canonicalises it (RFC 3986 unreserved characters only are left as they are)."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


def _error(start_response, code: str, message: str):
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


class _PresignedCheck:
    """WSGI layer in front of moto: query-signed requests are checked here, then re-signed in the header."""

    def __init__(self, app, keys: dict[str, str]):
        self.app, self.keys = app, keys

    def __call__(self, environ, start_response):
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = dict(query)
        if _SIGNATURE not in params:
            return self.app(environ, start_response)
        access_key = params.get("X-Amz-Credential", "").split("/")[0]
        if access_key not in self.keys:
            return _error(start_response, "InvalidAccessKeyId", "The AWS access key Id does not exist")
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if datetime.now(UTC) > signed_at + timedelta(seconds=int(params["X-Amz-Expires"])):
            return _error(start_response, "AccessDenied", "Request has expired")
        credentials = Credentials(access_key, self.keys[access_key])
        host = environ["HTTP_HOST"]
        path = quote(environ.get("RAW_URI", environ["PATH_INFO"]).split("?")[0], safe="/~%")
        unsigned = [(k, v) for k, v in query if k != _SIGNATURE]
        request = AWSRequest(
            method=environ["REQUEST_METHOD"], url=f"http://{host}{path}?{_aws_query(unsigned)}", headers={"host": host}
        )
        request.context["timestamp"] = params["X-Amz-Date"]
        auth = S3SigV4QueryAuth(credentials, "s3", REGION, expires=int(params["X-Amz-Expires"]))
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if not hmac.compare_digest(expected, params[_SIGNATURE]):
            return _error(
                start_response,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
            )
        rest = [(k, v) for k, v in query if not k.startswith("X-Amz-")]
        forward = AWSRequest(
            method=environ["REQUEST_METHOD"], url=f"http://{host}{path}?{_aws_query(rest)}", headers={"host": host}
        )
        S3SigV4Auth(credentials, "s3", REGION).add_auth(forward)
        environ = {
            **environ,
            "QUERY_STRING": _aws_query(rest),
            "RAW_URI": f"{path}?{_aws_query(rest)}",
            "REQUEST_URI": f"{path}?{_aws_query(rest)}",
        }
        for name, value in forward.headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        return self.app(environ, start_response)


class AuthenticatedS3:
    """moto server on a port of its own choosing (127.0.0.1:0), authenticating every request once started."""

    def __init__(self):
        from moto.moto_server.threaded_moto_server import MotoRequestHandler
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.keys: dict[str, str] = {}
        app = _PresignedCheck(DomainDispatcherApplication(create_backend_app), self.keys)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> tuple[str, str]:
        """Serve, make a user allowed `s3:*` and its key, then authenticate everything; the (key id, secret)."""
        self._thread.start()
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        # moto's IAM state is one per process: a second server here (a test's own) makes a user of its own.
        user = f"crm-jobs-{uuid.uuid4().hex[:12]}"
        iam.create_user(UserName=user)
        iam.put_user_policy(
            UserName=user,
            PolicyName="s3",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self.keys[key["AccessKeyId"]] = key["SecretAccessKey"]
        self._set_no_auth_count("0")
        return key["AccessKeyId"], key["SecretAccessKey"]

    def _set_no_auth_count(self, count: str) -> None:
        response = requests.post(f"{self.endpoint}/moto-api/reset-auth", data=count.encode(), timeout=10)
        response.raise_for_status()

    def stop(self) -> None:
        self._set_no_auth_count("inf")  # moto's setting is per process: leave it as moto's default
        self._server.shutdown()
        self._thread.join(timeout=10)

#!/usr/bin/env python3
"""Prints a SigV4 presigned GET URL (path-style) for an S3 object, standard
library only: lets wrk measure an S3 server's own GET rate on the same object
thumbfarm serves. Usage: presign.py ENDPOINT BUCKET KEY ACCESS SECRET [REGION]"""
import datetime
import hashlib
import hmac
import sys
import urllib.parse


def presign(endpoint, bucket, key, access, secret, region="us-east-1", expires=3600):
    parsed = urllib.parse.urlparse(endpoint)
    host = parsed.netloc
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    path = "/" + urllib.parse.quote(f"{bucket}/{key}", safe="/-_.~")
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(query.items())
    )
    canonical = "\n".join(
        ["GET", path, canonical_query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )

    def mac(k, msg):
        return hmac.new(k, msg.encode(), hashlib.sha256).digest()

    k = mac(("AWS4" + secret).encode(), day)
    k = mac(mac(mac(k, region), "s3"), "aws4_request")
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{parsed.scheme}://{host}{path}?{canonical_query}&X-Amz-Signature={signature}"


if __name__ == "__main__":
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    print(presign(*sys.argv[1:7]))

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""sigv4_presign.py - an independent SigV4 query-string presign (AWS
Signature Version 4, UNSIGNED-PAYLOAD, signed header host) with Python's hmac
and hashlib, the expected values of tests/unit/test_s3.c.

    sigv4_presign.py URL HOST REGION ACCESS_KEY SECRET_KEY TTL UNIX_TIME
prints the presigned URL. URL's path is used as it is (already encoded).
"""
import hmac, hashlib, sys, urllib.parse, datetime
def presign(url, host, region, ak, sk, ttl, now):
    t = datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc)
    date, stamp = t.strftime('%Y%m%d'), t.strftime('%Y%m%dT%H%M%SZ')
    path = url.split('://',1)[1]; path = path[path.index('/'):]
    scope = f'{date}/{region}/s3/aws4_request'
    q = [('X-Amz-Algorithm','AWS4-HMAC-SHA256'),('X-Amz-Credential',f'{ak}/{scope}'),('X-Amz-Date',stamp),('X-Amz-Expires',str(ttl)),('X-Amz-SignedHeaders','host')]
    qs = '&'.join(urllib.parse.quote(k,safe='-_.~')+'='+urllib.parse.quote(v,safe='-_.~') for k,v in sorted(q))
    canon = '\n'.join(['GET', path, qs, f'host:{host}', '', 'host', 'UNSIGNED-PAYLOAD'])
    sts = '\n'.join(['AWS4-HMAC-SHA256', stamp, scope, hashlib.sha256(canon.encode()).hexdigest()])
    k = ('AWS4'+sk).encode()
    for m in (date, region, 's3', 'aws4_request'):
        k = hmac.new(k, m.encode(), hashlib.sha256).digest()
    return url + '?' + qs + '&X-Amz-Signature=' + hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
print(presign(*sys.argv[1:6], int(sys.argv[6]), int(sys.argv[7])))

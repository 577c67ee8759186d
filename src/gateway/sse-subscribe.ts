// GET /v1/subscribe: a change feed as Server-Sent Events, for tools such as curl
// (`curl -N 'http://host:port/v1/subscribe?begin=<b64url>&end=<b64url>'`). The same
// feed as the WebSocket SubscribeRequest (coordinator/live-hub.ts): one `change` event
// per committed version, in order, each once; keys and values base64url. HTTP has no
// acknowledgements, so the socket's own backpressure throttles: changes uWS could not
// send yet are held up to limits.maxFeedBufferBytes, past which the stream ends with an
// `error` event (RESOURCE_CONSTRAINED).
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { TxnError, toWireError } from '../errors.js';
import type { FeedVersion } from '../coordinator/live-hub.js';
import { decimalVersion } from '../keys/versions.js';
import { decodeBase64url, decodeRangeEnd, STATUS_OF, statusLine, type Route } from './http.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

function eventOf(v: FeedVersion): string {
  const mutations = v.mutations.map((m) =>
    m.kind === 0 ? { type: 'set', key: b64(m.key), value: b64(m.param) } : m.kind === 1 ? { type: 'clear', key: b64(m.key) } : { type: 'clearRange', key: b64(m.key), end: b64(m.param) },
  );
  return `event: change\nid: ${v.version}\ndata: ${JSON.stringify({ version: String(v.version), mutations })}\n\n`;
}

export function subscribeRoute(maxFeedBufferBytes: number): Route {
  return {
    method: 'GET',
    path: '/v1/subscribe',
    query: ['begin', 'end', 'fromVersion'],
    access: 'read',
    raw: (res: HttpResponse, _req, { c, query, metrics }) => {
      let open = true;
      let feedId: number | null = null;
      let started = false;
      let backlog = 0;
      const early: string[] = [];
      const end = (): void => {
        open = false;
        if (feedId !== null) c.live.unsubscribe(feedId);
      };
      res.onAborted(end);
      const send = (text: string): void => {
        if (!open) return;
        if (!started) {
          early.push(text);
          return;
        }
        res.cork(() => {
          if (!res.write(text)) backlog += text.length;
        });
        if (backlog > maxFeedBufferBytes) {
          const message = `subscriber too slow: ${backlog} bytes of changes not sent; limit ${maxFeedBufferBytes} (limits.maxFeedBufferBytes)`;
          metrics?.countError('RESOURCE_CONSTRAINED');
          res.cork(() => res.end(`event: error\ndata: ${JSON.stringify({ error: { code: 'RESOURCE_CONSTRAINED', message } })}\n\n`));
          end();
        }
      };
      res.onWritable(() => {
        backlog = 0;
        return true;
      });
      const fail = (err: unknown, headersSent: boolean): void => {
        if (!open) return;
        const e = toWireError(err);
        // counted as every other endpoint's errors are (txkv_errors_total, txkv_http_requests_total);
        // a feed that had started was counted 200 when it did, its end by error only by code
        if (!headersSent) metrics?.response('GET', '/v1/subscribe', e.code === 'TOO_OLD' ? 410 : STATUS_OF[e.code]);
        metrics?.countError(e.code);
        const body = JSON.stringify({ error: { code: e.code, message: e.message } });
        res.cork(() => {
          if (headersSent) res.end(`event: error\ndata: ${body}\n\n`);
          // the statuses of every other endpoint (FUTURE_VERSION 409, RESOURCE_CONSTRAINED and
          // UNAVAILABLE 503: retry later), except TOO_OLD: 410, that history is gone for good
          else res.writeStatus(statusLine(e.code === 'TOO_OLD' ? 410 : STATUS_OF[e.code])).writeHeader('content-type', 'application/json').end(body);
        });
        end();
      };
      try {
        const begin = decodeBase64url(query.get('begin') ?? '', 'begin');
        const stop = query.get('end');
        const endKey = stop === null ? new Uint8Array([0xff]) : decodeRangeEnd(stop, 'end');
        const from = query.get('fromVersion');
        // exactly, never through Number() (999999999999999999 became 1000000000000000000);
        // past 2^53 FUTURE_VERSION, as on the binary protocol (keys/versions.ts)
        const fromVersion = from === null ? undefined : decimalVersion(from, 'fromVersion');
        c.live
          .subscribe(begin, endKey, fromVersion, {
            deliver: (versions) => {
              for (const v of versions) send(eventOf(v));
            },
            fail: (err) => fail(err, true),
          })
          .then(
            (id) => {
              feedId = id;
              if (!open) {
                c.live.unsubscribe(id);
                return;
              }
              metrics?.response('GET', '/v1/subscribe', 200);
              res.cork(() => {
                res.writeStatus('200 OK').writeHeader('content-type', 'text/event-stream').writeHeader('cache-control', 'no-cache');
                res.write(': txkv change feed\n\n');
              });
              started = true;
              for (const text of early.splice(0)) send(text);
            },
            (err: unknown) => fail(err, false),
          );
      } catch (err) {
        fail(err, false);
      }
    },
  };
}

// Compiled against the generated types: a front end's calls, checked by tsc (deploy/clients/check.sh).
import createClient from "openapi-fetch";
import type { paths as Issues } from "./ts/issues";
import type { paths as Media } from "./ts/media";
import type { paths as Scoring } from "./ts/scoring";

const issues = createClient<Issues>({ baseUrl: "http://127.0.0.1:8001" });
const media = createClient<Media>({ baseUrl: "http://127.0.0.1:8003" });
const scoring = createClient<Scoring>({ baseUrl: "http://127.0.0.1:8002" });

export async function tour(): Promise<void> {
  const regions = await issues.GET("/v1/regions", { params: { query: { level: "village", limit: 50 } } });
  const names: string[] = (regions.data?.items ?? []).map((region) => region.name);
  // An Update field is optional but never null; `phone` alone may be null.
  await issues.PATCH("/v1/users/{user_id}", {
    params: { path: { user_id: 12 } },
    body: { disabled: true, phone: null },
  });
  await issues.PATCH("/v1/regions/{code}", { params: { path: { code: "370282103201" } }, body: { name: names[0] ?? "前庄村" } });
  await media.GET("/v1/photos/{photo_id}", { params: { path: { photo_id: "p" } } });
  await scoring.GET("/v1/scoring/caller");
}

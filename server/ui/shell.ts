/**
 * The console's one HTML page: a shell that loads the bundled client (build/ui/app.js, from
 * server/ui/client/). No data is rendered here; the client reads it with the admin API.
 */
export function renderShell(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ferry</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/app.css">
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<noscript>The Ferry console needs JavaScript; the ferry CLI does everything it does.</noscript>
<div id="app"></div>
</body>
</html>
`;
}

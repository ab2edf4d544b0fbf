<?php
/**
 * Router of the PHP built-in server the curl transport is tested against:
 *   /slow  answers after 3 s (past the transport's 2 s)
 *   /echo  answers 200 with what it received, as JSON
 *   /down  answers 503 with an HTML page
 *   /record answers as /echo and appends what it received to the file $COMPTOIR_RECORD
 *
 * @license AGPL-3.0-or-later
 */
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$body = file_get_contents('php://input');
if ($path === '/slow') {
    sleep(3);
}
if ($path === '/record') {
    // One JSON line per request received, for tests that run the module in another process.
    file_put_contents((string) getenv('COMPTOIR_RECORD'), json_encode([
        'event' => $_SERVER['HTTP_X_COMPTOIR_EVENT'] ?? '',
        'hmac' => $_SERVER['HTTP_X_COMPTOIR_HMAC_SHA256'] ?? '',
        'user_agent' => $_SERVER['HTTP_USER_AGENT'] ?? '',
        'body' => $body,
    ]) . "\n", FILE_APPEND | LOCK_EX);
}
if ($path === '/down') {
    http_response_code(503);
    header('Content-Type: text/html');
    echo '<html><body>Service Unavailable</body></html>';

    return true;
}
header('Content-Type: application/json');
echo json_encode([
    'status' => 'stored',
    'method' => $_SERVER['REQUEST_METHOD'],
    'headers' => [
        'content_type' => $_SERVER['CONTENT_TYPE'] ?? '',
        'user_agent' => $_SERVER['HTTP_USER_AGENT'] ?? '',
        'event' => $_SERVER['HTTP_X_COMPTOIR_EVENT'] ?? '',
        'hmac' => $_SERVER['HTTP_X_COMPTOIR_HMAC_SHA256'] ?? '',
    ],
    'body' => $body,
]);

return true;

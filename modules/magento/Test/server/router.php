<?php

// Router for `php -S 127.0.0.1:<port> Test/server/router.php`: a stand-in Comptoir for the curl
// transport's real-socket tests. /slow answers after 3 s; /status/<code> answers that status;
// anything else appends what it received, as one JSON line, to the file named by COMPTOIR_SEEN_FILE.

declare(strict_types=1);

$path = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
header('Content-Type: application/json');
if ($path === '/slow') {
    sleep(3);
    echo '{"status": "stored"}';
    return true;
}
if (preg_match('#^/status/(\d{3})$#', $path, $match) === 1) {
    http_response_code((int) $match[1]);
    echo '{"error": "signature refused: digest mismatch"}';
    return true;
}
file_put_contents((string) getenv('COMPTOIR_SEEN_FILE'), json_encode([
    'method' => $_SERVER['REQUEST_METHOD'],
    'headers' => array_change_key_case(getallheaders(), CASE_LOWER),
    'body' => file_get_contents('php://input'),
    'received_at' => microtime(true),
]) . "\n", FILE_APPEND | LOCK_EX);
echo '{"status": "stored"}';
return true;

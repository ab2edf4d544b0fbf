<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit\Fake;

/**
 * PHP's built-in web server on a free loopback port, as one process (its workers would outlive
 * proc_terminate), so a slow request holds up the ones after it.
 */
final class BuiltInServer
{
    public readonly string $base;
    /** @var resource */
    private $process;

    /** @param array<string, string> $env */
    public function __construct(string $router, array $env = [])
    {
        $port = self::freePort();
        $this->base = 'http://127.0.0.1:' . $port;
        $process = proc_open(
            [PHP_BINARY, '-S', '127.0.0.1:' . $port, $router],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']],
            $pipes,
            null,
            $env + getenv(),
        );
        if ($process === false) {
            throw new \RuntimeException('could not start php -S');
        }
        $this->process = $process;
        $deadline = microtime(true) + 5;
        while (($socket = @fsockopen('127.0.0.1', $port, $errno, $errstr, 0.1)) === false) {
            if (microtime(true) > $deadline) {
                $this->stop();
                throw new \RuntimeException('php -S did not start on port ' . $port);
            }
            usleep(20_000);
        }
        fclose($socket);
    }

    public function stop(): void
    {
        proc_terminate($this->process);
        proc_close($this->process);
    }

    /** A loopback port nothing listens on (at the moment of asking). */
    public static function freePort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        if ($socket === false) {
            throw new \RuntimeException('no free port');
        }
        $name = (string) stream_socket_get_name($socket, false);
        fclose($socket);
        return (int) substr($name, strrpos($name, ':') + 1);
    }
}

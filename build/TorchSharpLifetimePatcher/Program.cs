return M3Train.Build.LifetimePatchCommand.Run(args, Console.Out);
